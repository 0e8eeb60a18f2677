"""Online features of one symbol from its latest bars (oldest first).

    last_return        close[-1] / close[-2] - 1
    volatility         sample standard deviation of the last N bar returns (N = window)
    vwap               sum(typical * volume) / sum(volume) over the last N bars,
                       typical = (high + low + close) / 3
    vwap_distance_bps  (close[-1] - vwap) / vwap * 10_000

A feature that needs more bars than there are is None, never a made-up number.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from typing import Any

from services.contract import Bar

__all__ = ["bar_returns", "compute_features", "vwap"]


def bar_returns(closes: Sequence[float]) -> list[float]:
    return [b / a - 1.0 for a, b in itertools.pairwise(closes)]


def vwap(bars: Sequence[Bar]) -> float | None:
    volume = sum(b.volume for b in bars)
    if volume <= 0:
        return None
    notional = sum((b.high + b.low + b.close) / 3.0 * b.volume for b in bars)
    return notional / volume


def compute_features(bars: Sequence[Bar], window: int) -> dict[str, Any]:
    """Features from `bars` (oldest first); only the last `window` + 1 bars are used."""
    if not bars:
        raise ValueError("no bars")
    recent = list(bars[-(window + 1):])
    closes = [b.close for b in recent]
    returns = bar_returns(closes)[-window:]
    last = recent[-1]
    average = vwap(recent[-window:])
    return {
        "symbol": last.symbol,
        "interval": last.interval,
        "bar_start": last.start,
        "close": closes[-1],
        "last_return": returns[-1] if returns else None,
        "volatility": statistics.stdev(returns) if len(returns) >= 2 else None,
        "vwap": average,
        "vwap_distance_bps": (closes[-1] - average) / average * 10_000 if average else None,
        "bars": len(recent),
        "window": window,
    }
