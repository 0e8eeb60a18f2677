"""Synthetic saved runs in the bench's format (trade-ops-run/1), for the report tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
from hdrh.histogram import HdrHistogram

__all__ = ["make_run", "save_run"]


def _hist(values_us: np.ndarray) -> HdrHistogram:
    hist = HdrHistogram(1, 60_000_000, 3)
    for v in values_us:
        hist.record_value(int(min(max(v, 1), 60_000_000)))
    return hist


def _summary(hist: HdrHistogram) -> dict[str, float]:
    ms = 1000.0
    return {"p50": hist.get_value_at_percentile(50) / ms, "p90": hist.get_value_at_percentile(90) / ms,
            "p99": hist.get_value_at_percentile(99) / ms, "p999": hist.get_value_at_percentile(99.9) / ms,
            "max": hist.get_max_value() / ms, "mean": hist.get_mean_value() / ms}


def make_run(name: str, *, median_ms: float = 10.0, seed: int = 0, intervals: int = 20,
             per_interval: int = 300, scenario: str = "load", rate: float = 300.0,
             error_every: int = 0, valid: bool = True, slo_passed: bool = True) -> dict[str, Any]:
    """A run whose latencies are lognormal around `median_ms`, one histogram per second."""
    rng = np.random.default_rng(seed)
    total, service, lag = (HdrHistogram(1, 60_000_000, 3) for _ in range(3))
    ivs, errors = [], 0
    for i in range(intervals):
        values = rng.lognormal(np.log(median_ms * 1000), 0.5, per_interval)
        hist = _hist(values)
        total.add(hist)
        service.add(hist)
        lag.record_value(50)
        errs = per_interval // error_every if error_every else 0
        errors += errs
        ivs.append({"start_s": float(i), "end_s": float(i + 1), "count": per_interval, "errors": errs,
                    "latency": hist.encode().decode(), "service_time": hist.encode().decode()})
    requests = intervals * per_interval
    p99 = _summary(total)["p99"]
    return {
        "format": "trade-ops-run/1", "name": name, "created_at": "2025-01-01T00:00:00+00:00",
        "meta": {"git_revision": "abc1234", "packages": {"trade-ops": "0.1.0"},
                 "host": {"cpu": "synthetic", "cores": 2, "platform": "linux", "python": "3.12"}},
        "scenario": {"name": scenario, "hash": f"h-{scenario}", "definition": {"orders": "market"}},
        "settings": {"target": "oms", "url": "http://127.0.0.1:8099", "model": "open", "rate": rate,
                     "duration_s": float(intervals), "concurrency": None, "requests": None, "warmup": 2},
        "calibration": {"overhead_p50_ms": 0.05, "overhead_p99_ms": 0.2, "max_rate": 5000.0},
        "results": {"requests": requests, "errors": errors,
                    "errors_by_kind": {"http_503": errors} if errors else {},
                    "rejections": 0, "rate": requests / intervals, "duration_s": float(intervals),
                    "valid": valid, "invalid_reason": None if valid else "generator fell behind schedule",
                    "latency_ms": _summary(total), "service_time_ms": _summary(service),
                    "schedule_lag_ms": _summary(lag),
                    "slo": [{"expr": "p99<100ms", "passed": slo_passed, "observed": f"p99={p99:.1f}ms"}],
                    "passed": slo_passed},
        "histograms": {"latency": total.encode().decode(), "service_time": service.encode().decode(),
                       "schedule_lag": lag.encode().decode()},
        "intervals": ivs,
    }


def save_run(directory: Path, name: str, **kwargs: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_bytes(orjson.dumps(make_run(name, **kwargs)))
    return path
