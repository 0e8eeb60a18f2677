"""What `trade-ops report perf --json` prints, as a type: the document is encoded from a
ReportResult (msgspec), with the keys it had before this type existed, so a reader can
decode it back by this type (tests/test_report_cli.py does).

    ReportResult
      status, exit_code                 pass | fail: every --expect gate met
      before, after, report             the runs compared, where the markdown report went
      min_effect, forced_over, warnings what the comparison allowed and noticed
      rows: [RowResult]                 per metric: the figures, the change, the verdict, the test
      expectations: [ExpectationResult] per --expect gate: met, and why
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ExpectationResult", "ReportResult", "RowResult"]


class RowResult(msgspec.Struct, kw_only=True):
    metric: str
    unit: str
    before: float | None
    after: float | None
    change: float | None  # after / before - 1
    significant: bool | None  # None: inconclusive or untested
    call: str  # changed | unchanged | inconclusive | untested
    verdict: str
    interval: list[float] | None  # the change's confidence interval, after / before
    margin: float | None
    test: str
    p_value: float | None
    describe: str


class ExpectationResult(msgspec.Struct, kw_only=True):
    expect: str
    met: bool
    detail: str


class ReportResult(msgspec.Struct, kw_only=True):
    status: str
    exit_code: int
    before: str
    after: str
    report: str
    min_effect: float
    forced_over: list[str]
    warnings: list[str]
    rows: list[RowResult]
    expectations: list[ExpectationResult]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = msgspec.to_builtins(self)
        return doc
