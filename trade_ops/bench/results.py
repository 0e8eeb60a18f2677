"""Raw per-request records -> the result document: three HDR histograms (corrected
latency, service time, schedule lag), per-interval histograms, errors by kind, validity.

Latency and service-time histograms hold every request that got an answer or timed out;
connection and protocol failures have no meaningful duration and are only counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from trade_ops.bench import hist
from trade_ops.bench.loadgen import LoadSpec, Raw
from trade_ops.bench.targets import CONNECTION, HTTP_ERROR, KIND_NAMES, OK, PROTOCOL, REJECTED

__all__ = ["DEFAULT_MAX_LAG_MS", "Analysis", "Interval", "analyse"]

DEFAULT_MAX_LAG_MS = 10.0


@dataclass
class Interval:
    start_s: float
    end_s: float
    count: int = 0
    errors: int = 0
    latency: HdrHistogram = field(default_factory=hist.new)
    service_time: HdrHistogram = field(default_factory=hist.new)

    def to_json(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "count": self.count,
                "errors": self.errors, "latency": hist.encode(self.latency),
                "service_time": hist.encode(self.service_time)}


@dataclass
class Analysis:
    result: dict[str, Any]  # the --json document (without slo/passed until evaluated)
    latency: HdrHistogram
    service_time: HdrHistogram
    schedule_lag: HdrHistogram
    intervals: list[Interval]

    def histograms_json(self) -> dict[str, str]:
        return {"latency": hist.encode(self.latency), "service_time": hist.encode(self.service_time),
                "schedule_lag": hist.encode(self.schedule_lag)}


def _invalid_reason(raw: Raw, spec: LoadSpec, n: int, lag: HdrHistogram, max_lag_ms: float) -> str | None:
    if n == 0:
        return "no requests were measured (the run ended during warm-up or sent nothing)"
    if raw.stopped_by_time:
        return (f"the run hit its time bound ({spec.max_time_s:g} s) after {raw.scheduled:,} of "
                f"{raw.planned:,} requests")
    if spec.model == "open":
        lag_p99 = lag.get_value_at_percentile(99.0) / 1000.0
        if lag_p99 > max_lag_ms:
            return (f"the generator fell behind its schedule: schedule lag p99 {lag_p99:.1f} ms > "
                    f"{max_lag_ms:g} ms, so latencies include the generator's own delay; lower the "
                    f"rate or free the CPU")
    return None


def analyse(raw: Raw, spec: LoadSpec, *, interval_s: float = 1.0,
            max_lag_ms: float = DEFAULT_MAX_LAG_MS) -> Analysis:
    lat, svc, lag = hist.new(), hist.new(), hist.new()
    by_kind: dict[str, int] = {}
    rejections = errors = n = 0
    first = last = None
    measured: list[int] = []
    for j in range(len(raw)):
        if raw.index[j] < raw.warmup_n or raw.sent[j] < raw.warmup_until:
            continue
        measured.append(j)
        intended = raw.intended[j]
        first = intended if first is None or intended < first else first
        last = raw.done[j] if last is None or raw.done[j] > last else last
    intervals: dict[int, Interval] = {}
    for j in measured:
        n += 1
        kind = raw.kind[j]
        if kind == REJECTED:
            rejections += 1
        elif kind != OK:
            errors += 1
            name = f"http_{raw.status[j]}" if kind == HTTP_ERROR else KIND_NAMES[kind]
            by_kind[name] = by_kind.get(name, 0) + 1
        slot = int((raw.intended[j] - first) / interval_s)  # type: ignore[operator]
        iv = intervals.get(slot)
        if iv is None:
            iv = intervals[slot] = Interval(slot * interval_s, (slot + 1) * interval_s)
        iv.count += 1
        iv.errors += kind not in (OK, REJECTED)
        hist.record_s(lag, raw.dispatched[j] - raw.intended[j])
        if kind in (CONNECTION, PROTOCOL):
            continue
        latency, service = raw.done[j] - raw.intended[j], raw.done[j] - raw.sent[j]
        hist.record_s(lat, latency)
        hist.record_s(svc, service)
        hist.record_s(iv.latency, latency)
        hist.record_s(iv.service_time, service)
    duration = (last - first) if n else 0.0  # type: ignore[operator]
    reason = _invalid_reason(raw, spec, n, lag, max_lag_ms)
    result: dict[str, Any] = {
        "model": spec.model,
        "requests": n,
        "ok": n - errors - rejections,
        "errors": errors,
        "errors_by_kind": dict(sorted(by_kind.items())),
        "error_samples": raw.error_samples,
        "rejections": rejections,
        "rate": round(n / duration, 2) if duration > 0 else 0.0,
        "target_rate": spec.rate if spec.model == "open" else None,
        "duration_s": round(duration, 3),
        "warmup_requests": sum(1 for j in range(len(raw)) if raw.index[j] < raw.warmup_n
                               or raw.sent[j] < raw.warmup_until),
        "connections": raw.connections,
        "valid": reason is None,
        "invalid_reason": reason,
        "latency_ms": hist.summary_ms(lat),
        "service_time_ms": hist.summary_ms(svc),
        "schedule_lag_ms": hist.summary_ms(lag),
        "corrected": spec.model == "open",
    }
    return Analysis(result, lat, svc, lag, [intervals[k] for k in sorted(intervals)])
