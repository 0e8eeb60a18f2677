"""A decoded latency histogram as two numpy arrays, so percentiles are cheap.

hdrh's own percentile and mean walk every bucket in Python (tens of thousands per
histogram); a report asks hundreds of them, so each histogram is turned once into its
recorded values (ms, highest equivalent value, as hdrh reports percentiles) and counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trade_ops.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Dist", "decode_dist"]


@dataclass(frozen=True)
class Dist:
    values_ms: np.ndarray  # highest equivalent value of each recorded bucket, ascending
    mids_ms: np.ndarray  # middle of each bucket's range, for the mean
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def percentile(self, pct: float) -> float:
        """As HdrHistogram.get_value_at_percentile: the value at count round(p * total)."""
        import numpy as np

        total = self.total
        if total == 0:
            return math.nan
        target = max(int(min(pct, 100.0) / 100.0 * total + 0.5), 1)
        index = int(np.searchsorted(np.cumsum(self.counts), target))
        return float(self.values_ms[min(index, len(self.values_ms) - 1)])

    def max(self) -> float:
        return float(self.values_ms[-1]) if self.total else math.nan

    def mean(self) -> float:
        return float(self.mids_ms @ self.counts / self.total) if self.total else math.nan


def decode_dist(encoded: str | bytes) -> Dist:
    import numpy as np
    from hdrh.histogram import HdrHistogram

    try:
        hist = HdrHistogram.decode(encoded)
    except Exception as exc:  # hdrh raises bare errors of several kinds on bad input
        raise UsageError(f"a histogram in the run cannot be decoded: {exc}") from None
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    index = np.nonzero(counts)[0]
    lows = [hist.get_value_from_index(int(i)) for i in index]
    highs = np.array([hist.get_highest_equivalent_value(v) for v in lows], dtype=float)
    mids = (np.array(lows, dtype=float) + highs) / 2.0
    return Dist(highs / 1000.0, mids / 1000.0, counts[index].astype(float))
