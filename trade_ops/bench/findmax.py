"""The highest rate that still meets the SLOs: double from a start rate until a step
fails, then bisect between the last pass and the first failure until they are within
`precision` of each other. Bounded by max_steps and the limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FindMax", "Step", "find_max"]


@dataclass
class Step:
    rate: float
    passed: bool
    summary: dict[str, Any]


@dataclass
class FindMax:
    max_rate: float | None
    steps: list[Step] = field(default_factory=list)
    limited_by: str = ""  # "slo", "generator", "limit", "steps"

    def to_json(self) -> dict[str, Any]:
        return {"max_rate": self.max_rate, "limited_by": self.limited_by,
                "steps": [{"rate": s.rate, "passed": s.passed, **s.summary} for s in self.steps]}


def find_max(measure: Callable[[float], tuple[bool, dict[str, Any]]], start: float, limit: float,
             *, precision: float = 0.1, max_steps: int = 12, floor: float = 1.0) -> FindMax:
    """measure(rate) -> (passed, summary); summary["valid"] False means the generator failed."""
    out = FindMax(None)
    lo: float | None = None
    hi: float | None = None
    rate = min(start, limit)
    while len(out.steps) < max_steps:
        passed, summary = measure(rate)
        out.steps.append(Step(round(rate, 2), passed, summary))
        if passed:
            lo = rate
            if hi is None:
                if rate >= limit:
                    out.limited_by = "limit"
                    break
                rate = min(rate * 2, limit)
                continue
        else:
            hi = rate
            out.limited_by = "slo" if summary.get("valid", True) else "generator"
            if lo is None:
                if rate / 2 < floor:
                    break
                rate = rate / 2
                continue
        if hi - lo <= precision * lo:
            break
        rate = (lo + hi) / 2
    else:
        out.limited_by = out.limited_by or "steps"
    out.max_rate = round(lo, 2) if lo is not None else None
    return out
