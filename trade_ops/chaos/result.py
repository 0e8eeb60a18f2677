"""What `trade-ops chaos` found: one typed result, the JSON document (`--json`, the report
file in RUN_DIR/chaos/) encoded from it with the same keys as before this type existed.

    ChaosResult
      run_id, account, rate, duration_s          the run
      faults: [FaultRun]                         each fault, when it began and ended, notes
      sent, acknowledged, retried                 orders
      first_answers, final_answers                HTTP status -> count (before / after retries)
      recovery_s                                  fault -> seconds from its end to the next 201
      lost, traded_after_error, duplicated, unsettled
                                                  orders breaking each invariant (0 is a pass)
      safe, settled, passed                       the verdict
      examples: Examples, notes                   what broke, by invariant; what to know
      unclear_after_retries                       requests without a clear answer
      health: HealthSeen                          the worst /health of each service meanwhile
      load_average, report                        the host; where the report file is
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["INVARIANTS", "ChaosResult", "Examples", "FaultRun", "HealthSeen"]

INVARIANTS = ("lost", "traded_after_error", "duplicated", "unsettled")


class FaultRun(msgspec.Struct, kw_only=True):
    fault: str  # its label, NAME[ SVC]@START+HOLD
    began_s: float | None  # seconds from the load's start
    ended_s: float | None
    notes: list[str]


class Examples(msgspec.Struct, kw_only=True):
    lost: list[str]
    unsettled: list[str]
    traded_after_error: list[str]
    duplicated: list[str]

    def of(self, invariant: str) -> list[str]:
        found: list[str] = getattr(self, invariant)
        return found


class HealthSeen(msgspec.Struct, kw_only=True):
    worst: dict[str, str]  # service -> pass | warn | fail | down
    not_pass: dict[str, list[str]]  # service -> the checks that were not pass


class ChaosResult(msgspec.Struct, kw_only=True):
    run_id: str
    account: str
    rate: float
    duration_s: float
    faults: list[FaultRun]
    sent: int
    acknowledged: int
    first_answers: dict[str, int]
    final_answers: dict[str, int]
    retried: int
    recovery_s: dict[str, float | None]
    lost: int
    traded_after_error: int
    duplicated: int
    unsettled: int
    safe: bool
    settled: bool
    passed: bool
    examples: Examples
    notes: list[str]
    unclear_after_retries: list[str]
    health: HealthSeen
    load_average: list[float]
    report: str = ""  # the report file, once written

    def broken(self, invariant: str) -> int:
        """How many orders broke `invariant` (one of INVARIANTS)."""
        count: int = getattr(self, invariant)
        return count

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = msgspec.to_builtins(self)
        return doc
