"""The seam between results and the CI formats: what a result judged, as one Suite of Cases.

A Case is one check (doctor), SLO gate (bench), invariant (chaos) or expectation (report
perf). A failed case says the measured value and the limit it broke. Only this module reads
the results' fields for JUnit; when the results become typed classes, only it changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from trade_ops.chaos.result import ChaosResult
    from trade_ops.doctor.model import DoctorReport
    from trade_ops.report.perf import PerfReport
    from trade_ops.savedruns import BenchResult

__all__ = ["Case", "Suite", "bench_suite", "chaos_suite", "doctor_suite", "perf_suite"]

Outcome = Literal["passed", "failed", "error", "skipped"]


@dataclass(frozen=True)
class Case:
    name: str
    classname: str
    outcome: Outcome = "passed"
    message: str = ""  # failed: the measured value and the limit; skipped: why
    text: str = ""  # the detail under it
    seconds: float = 0.0
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    name: str
    cases: list[Case]
    seconds: float = 0.0
    timestamp: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    properties: Mapping[str, str] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> int:
        return sum(c.outcome == outcome for c in self.cases)


def doctor_suite(doc: DoctorReport) -> Suite:
    """One case per check; a warning fails only under --strict (as the gate does)."""
    cases = []
    for check in doc.checks:
        status = check.status
        lines = [*check.details, *(f"{key} = {value}" for key, value in check.data.items()),
                 *([f"blocked by {', '.join(check.blocked_by)}"] if check.blocked_by else []),
                 *([f"fix: {check.remedy}"] if check.remedy else []),
                 *check.log_tail]
        outcome: Outcome = ("failed" if status == "fail" or (doc.strict and status == "warn")
                            else "skipped" if status == "skip" else "passed")
        message = "; ".join(check.problems) or check.summary or status
        cases.append(Case(check.name, f"trade-ops.doctor.{check.group}", outcome,
                          message if outcome != "passed" else "", "\n".join(lines), check.duration_ms / 1000,
                          {"status": status, **({"component": check.component} if check.component else {})}))
    return Suite("trade-ops doctor", cases, doc.duration_ms / 1000, doc.started_at or _now(),
                 {"status": doc.status})


def bench_suite(result: BenchResult) -> Suite:
    """One case per SLO gate, then the gates every run carries: some request succeeded
    (and not every order rejected), and the measurement is valid (an error when not: exit 4)."""
    where = f"trade-ops.bench.{result.target or '?'}"
    cases = []
    for slo in result.slo:
        failed = not slo.passed
        cases.append(Case(f"SLO {slo.expr}", where, "failed" if failed else "passed",
                          f"measured {slo.observed}, limit {slo.expr}" if failed else "",
                          f"measured {slo.observed}; limit {slo.expr}"))
    others = [f for f in result.failures if not f.startswith("SLO ")]
    counts = (f"measured {result.ok} of {result.requests} requests succeeded, {result.errors} errors, "
              f"{result.rejections} rejections; limit at least one success")
    cases.append(Case("requests succeeded", where, "failed" if others else "passed",
                      "; ".join(others) + f" ({counts})" if others else "", counts))
    reason = result.invalid_reason
    cases.append(Case("measurement valid", where, "passed" if result.valid else "error",
                      str(reason or ""), str(reason or "the generator kept its schedule")))
    return Suite(f"trade-ops bench {result.target or '?'}", cases, result.duration_s,
                 properties={"url": result.url, "scenario": result.scenario, "status": result.status})


_INVARIANTS = (
    ("lost", "every 201 is readable, in the orders stream and traded at most as acknowledged"),
    ("traded_after_error", "an order answered 4xx, 503 or not at all never trades"),
    ("duplicated", "no fill applied twice, one order per client_order_id"),
    ("unsettled", "every accepted order is terminal and in positions and the lake when the settle "
                  "window ends"),
)


def chaos_suite(result: ChaosResult) -> Suite:
    """One case per invariant: the count of orders that broke it (the limit is 0), examples."""
    cases = []
    for key, promise in _INVARIANTS:
        broken = result.broken(key)
        cases.append(Case(key.replace("_", " "), "trade-ops.chaos", "failed" if broken else "passed",
                          f"measured {broken} orders, limit 0: {promise}" if broken else "",
                          "\n".join([promise, *result.examples.of(key)])))
    faults = ", ".join(f.fault for f in result.faults)
    return Suite("trade-ops chaos", cases, float(result.duration_s),
                 properties={"run_id": result.run_id, "faults": faults, "sent": str(result.sent),
                             "acknowledged": str(result.acknowledged)})


def perf_suite(report: PerfReport) -> Suite:
    """One case per --expect gate, then one per metric (informational: its verdict and test)."""
    cmp = report.comparison
    cases = [Case(f"expect {v.expectation.describe()}", "trade-ops.report.perf",
                  "passed" if v.met else "failed", "" if v.met else v.detail, v.detail)
             for v in report.verdicts]
    cases += [Case(f"{row.metric.label}: {row.verdict()}", "trade-ops.report.perf.metrics", "passed", "",
                   f"{row.before} -> {row.after} {row.metric.unit} ({row.change_text()}); "
                   f"{row.significance.describe()}")
              for row in cmp.rows]
    return Suite(f"trade-ops report perf {cmp.before.name} {cmp.after.name}", cases,
                 properties={"before": cmp.before.name, "after": cmp.after.name, "report": str(report.path)})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
