"""Transaction cost analysis maths: slippage against the arrival mid, percentiles.

    slippage_bps = (price - mid) / mid * 10_000, times -1 for a sell

so a positive number is a cost to the trader (bought above the mid, sold below it).
Percentiles interpolate linearly between closest ranks (numpy's default method).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["LATENCY_PERCENTILES", "percentile", "slippage_bps", "summarize"]

LATENCY_PERCENTILES = (50, 90, 99)


def slippage_bps(side: str, price: float, mid: float) -> float:
    if mid <= 0:
        raise ValueError(f"mid must be > 0, got {mid}")
    raw = (price - mid) / mid * 10_000
    return raw if side == "buy" else -raw


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    if not values:
        raise ValueError("no values")
    return float(np.percentile(values, p))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def summarize(fills: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One symbol's TCA from its fill records ({quantity, slippage_bps|None, latency_ms|None})."""
    fills = list(fills)
    slipped = [f for f in fills if f.get("slippage_bps") is not None]
    latencies = [float(f["latency_ms"]) for f in fills if f.get("latency_ms") is not None]
    slips = [float(f["slippage_bps"]) for f in slipped]
    qty = sum(float(f["quantity"]) for f in slipped)
    weighted = (sum(float(f["slippage_bps"]) * float(f["quantity"]) for f in slipped) / qty
                if qty > 0 else None)
    return {
        "fills": len(fills),
        "quantity": sum(float(f["quantity"]) for f in fills),
        "slippage_bps": {
            "measured": len(slips),
            "without_arrival_mid": len(fills) - len(slips),
            "weighted_avg": _round(weighted),
            "p50": _round(percentile(slips, 50)) if slips else None,
            "p95": _round(percentile(slips, 95)) if slips else None,
            "worst": _round(max(slips)) if slips else None,
        },
        "latency_ms": {
            "count": len(latencies),
            **{f"p{p}": _round(percentile(latencies, p)) if latencies else None
               for p in LATENCY_PERCENTILES},
            "max": _round(max(latencies)) if latencies else None,
        },
    }
