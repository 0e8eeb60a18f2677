"""Synthetic saved runs in the bench's format (trade-ops-run/1), for the report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
from hdrh.histogram import HdrHistogram

__all__ = ["make_run", "save_run"]


# Smaller and coarser than the bench's (1 us..60 s, 3 digits): encoding and decoding cost
# grows with the range, and the statistics do not need the precision. Readers take the
# range from each histogram's own header.
HIGHEST_US, DIGITS = 10_000_000, 2
TAIL_SHARE = 0.03  # the requests a tail_factor slows: p99 lies among them, p90 and p50 do not


def _new() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, DIGITS)


def _hist(values_us: np.ndarray) -> HdrHistogram:
    hist = _new()
    for v in values_us:
        hist.record_value(int(min(max(v, 1), HIGHEST_US)))
    return hist


def _summary(hist: HdrHistogram) -> dict[str, float]:
    ms = 1000.0
    return {"p50": hist.get_value_at_percentile(50) / ms, "p90": hist.get_value_at_percentile(90) / ms,
            "p99": hist.get_value_at_percentile(99) / ms, "p999": hist.get_value_at_percentile(99.9) / ms,
            "max": hist.get_max_value() / ms, "mean": hist.get_mean_value() / ms}


def _one_run(rng: np.random.Generator, median_ms: float, intervals: int, per_interval: int,
             error_every: int, interval_sd: float, run_sd: float, tail_factor: float = 1.0) -> dict[str, Any]:
    """One run's histograms and intervals. Noise at three levels, as on a real host: each
    request (lognormal, sigma 0.5), each interval (what the host did that second:
    interval_sd) and the run as a whole (its conditions: run_sd), all multiplicative.
    tail_factor slows the slowest TAIL_SHARE of each interval's requests by that factor
    (a tail change: p99 moves, p50 does not)."""
    total, service, lag = (_new() for _ in range(3))
    ivs, errors = [], 0
    run_factor = float(np.exp(rng.normal(0.0, run_sd))) if run_sd else 1.0
    for i in range(intervals):
        factor = run_factor * (float(np.exp(rng.normal(0.0, interval_sd))) if interval_sd else 1.0)
        values = rng.lognormal(np.log(median_ms * 1000 * factor), 0.5, per_interval)
        if tail_factor != 1.0:
            values = np.where(values >= np.quantile(values, 1 - TAIL_SHARE), values * tail_factor, values)
        hist = _hist(values)
        total.add(hist)
        service.add(hist)
        lag.record_value(50)
        errs = per_interval // error_every if error_every else 0
        errors += errs
        encoded = hist.encode().decode()
        ivs.append({"start_s": float(i), "end_s": float(i + 1), "count": per_interval, "errors": errs,
                    "partial": False, "latency": encoded, "service_time": encoded})
    requests = intervals * per_interval
    results = {"requests": requests, "errors": errors,
               "errors_by_kind": {"http_503": errors} if errors else {},
               "rejections": 0, "rate": requests / intervals, "duration_s": float(intervals),
               "latency_ms": _summary(total), "service_time_ms": _summary(service),
               "schedule_lag_ms": _summary(lag)}
    return {"results": results, "intervals": ivs, "hists": (total, service, lag)}


def make_run(name: str, *, median_ms: float = 10.0, seed: int = 0, intervals: int = 20,
             per_interval: int = 300, scenario: str = "load", rate: float = 300.0,
             error_every: int = 0, valid: bool = True, slo_passed: bool = True, repeat: int = 1,
             interval_sd: float = 0.0, run_sd: float = 0.0, tail_factor: float = 1.0) -> dict[str, Any]:
    """A run whose latencies are lognormal around `median_ms`, one histogram per second;
    with repeat > 1, that many runs saved as one, as `bench --repeat` saves them."""
    rng = np.random.default_rng(seed)
    each = [_one_run(rng, median_ms, intervals, per_interval, error_every, interval_sd, run_sd, tail_factor)
            for _ in range(repeat)]
    total, service, lag = (_new() for _ in range(3))
    ivs: list[dict[str, Any]] = []
    for k, one in enumerate(each):
        for h, add in zip((total, service, lag), one["hists"], strict=True):
            h.add(add)
        ivs += [{**iv, "start_s": iv["start_s"] + k * intervals, "end_s": iv["end_s"] + k * intervals}
                for iv in one["intervals"]]
    requests = repeat * intervals * per_interval
    errors = sum(one["results"]["errors"] for one in each)
    p99 = _summary(total)["p99"]
    return {
        "format": "trade-ops-run/1", "name": name, "created_at": "2025-01-01T00:00:00+00:00",
        "meta": {"git_revision": "abc1234", "packages": {"trade-ops": "0.1.0"},
                 "host": {"cpu": "synthetic", "cores": 2, "platform": "linux", "python": "3.12"}},
        "scenario": {"name": scenario, "hash": f"h-{scenario}", "definition": {"orders": "market"}},
        "settings": {"target": "oms", "url": "http://127.0.0.1:8099", "model": "open", "rate": rate,
                     "duration_s": float(intervals), "concurrency": None, "requests": None, "warmup": 2,
                     "repeat": repeat},
        "calibration": {"overhead_p50_ms": 0.05, "overhead_p99_ms": 0.2, "max_rate": 5000.0},
        "results": {"requests": requests, "errors": errors,
                    "errors_by_kind": {"http_503": errors} if errors else {},
                    "rejections": 0, "rate": requests / (repeat * intervals),
                    "duration_s": float(repeat * intervals),
                    "valid": valid, "invalid_reason": None if valid else "generator fell behind schedule",
                    "latency_ms": _summary(total), "service_time_ms": _summary(service),
                    "schedule_lag_ms": _summary(lag),
                    "slo": [{"expr": "p99<100ms", "passed": slo_passed, "observed": f"p99={p99:.1f}ms"}],
                    "passed": slo_passed},
        "histograms": {"latency": total.encode().decode(), "service_time": service.encode().decode(),
                       "schedule_lag": lag.encode().decode()},
        "intervals": ivs,
        "repeats": [{"results": one["results"], "intervals": one["intervals"]} for one in each]
        if repeat > 1 else [],
    }


def save_run(directory: Path, name: str, **kwargs: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_bytes(orjson.dumps(make_run(name, **kwargs)))
    return path
