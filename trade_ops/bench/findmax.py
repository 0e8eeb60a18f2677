"""The highest rate that still meets the SLOs: double from a start rate until a step
fails, then bisect between the last pass and the first failure until they are within
`precision` of each other. Bounded by max_steps and the limit."""

from __future__ import annotations

from collections.abc import Callable

from trade_ops.savedruns import FindMax, Step

__all__ = ["find_max"]


def find_max(measure: Callable[[float], Step], start: float, limit: float,
             *, precision: float = 0.1, max_steps: int = 12, floor: float = 1.0) -> FindMax:
    """measure(rate) -> its Step; a step not valid means the generator failed, not the target."""
    out = FindMax()
    lo: float | None = None
    hi: float | None = None
    rate = min(start, limit)
    while len(out.steps) < max_steps:
        step = measure(rate)
        step.rate = round(rate, 2)
        out.steps.append(step)
        if step.passed:
            lo = rate
            if hi is None:
                if rate >= limit:
                    out.limited_by = "limit"
                    break
                rate = min(rate * 2, limit)
                continue
        else:
            hi = rate
            out.limited_by = "slo" if step.valid else "generator"
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
