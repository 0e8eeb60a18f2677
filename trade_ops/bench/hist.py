"""HDR histogram helpers: every value is recorded in microseconds, 1 us to 60 s, with
3 significant digits; summaries are reported in milliseconds."""

from __future__ import annotations

import io

from hdrh.histogram import HdrHistogram

__all__ = ["HIGHEST_US", "LOWEST_US", "SIGNIFICANT", "counts_at_or_below", "decode", "encode", "mean_us",
           "new", "percentile_text", "record_s", "summary_ms"]

LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)


def record_s(h: HdrHistogram, seconds: float) -> None:
    """Record a duration given in seconds (clamped into the trackable range)."""
    us = int(seconds * 1e6 + 0.5)
    h.record_value(min(max(us, LOWEST_US), HIGHEST_US))


def summary_ms(h: HdrHistogram) -> dict[str, float]:
    """{p50, p90, p99, p999, max, mean} in milliseconds (all 0.0 for an empty histogram)."""
    if h.get_total_count() == 0:
        return {**dict.fromkeys(PERCENTILES, 0.0), "max": 0.0, "mean": 0.0}
    out = {k: round(h.get_value_at_percentile(p) / 1000.0, 4) for k, p in PERCENTILES.items()}
    out["max"] = round(h.get_max_value() / 1000.0, 4)
    out["mean"] = round(mean_us(h) / 1000.0, 4)
    return out


def mean_us(h: HdrHistogram) -> float:
    """As HdrHistogram.get_mean_value (each bucket at its median equivalent value), over the
    recorded buckets only: hdrh's own walks its iterator in Python, a second per histogram."""
    import numpy as np

    counts = np.ctypeslib.as_array(h.counts)[: h.counts_len]
    index = np.nonzero(counts)[0]
    if not len(index):
        return 0.0
    mids = np.array([h._hdr_median_equiv_value(h.get_value_from_index(int(i))) for i in index], dtype=float)
    return float(mids @ counts[index].astype(float) / counts[index].sum())


def counts_at_or_below(h: HdrHistogram, bounds_us: list[float]) -> list[int]:
    """How many values are <= each bound (cumulative, as Prometheus buckets count), each
    recorded bucket taken at its lowest value: exact to the histogram's 3 significant digits."""
    import numpy as np

    counts = np.ctypeslib.as_array(h.counts)[: h.counts_len]
    index = np.nonzero(counts)[0]
    lows = np.array([h.get_value_from_index(int(i)) for i in index], dtype=float)
    found = counts[index]
    return [int(found[lows <= bound].sum()) for bound in bounds_us]


def encode(h: HdrHistogram) -> str:
    encoded: bytes = h.encode()  # hdrh has no type hints
    return encoded.decode("ascii")


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def percentile_text(h: HdrHistogram) -> str:
    """The percentile distribution in milliseconds: the `.hgrm` that HDR plotters read."""
    out = io.BytesIO()
    h.output_percentile_distribution(out, 1000.0)
    return out.getvalue().decode("ascii")
