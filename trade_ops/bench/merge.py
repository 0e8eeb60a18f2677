"""The workers' results as one run: HDR histograms added exactly, counters summed, and
every worker that cannot be trusted named.

Histograms are added bucket by bucket (`decode_and_add` of each worker's V2 encoding), so
the merged p50/p99/p99.9 are those of all requests pooled: nothing is averaged (k6 and
locust merge summaries or rounded times, which loses the tail). Intervals are the same
slots in every worker (each counts from the run's one origin), added slot by slot; an
interval is partial when the whole run's schedule does not cover it.

A worker is named, and the run made invalid, when it failed or never reported, when its
schedule began more than LATE_START_MS after the start time, when its own result is
invalid, or when its own schedule lag would move its figures or decide an SLO (the same
rule as a single-process run, results.lag_reason). Nothing is dropped: the figures of the
workers that did report are shown, and the verdict is INVALID (exit 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from trade_ops.bench import hist
from trade_ops.bench.results import Analysis, errors_of, lag_reason, live_interval, noise_bounds_ms, summary
from trade_ops.bench.slo import Slo
from trade_ops.bench.worker import WorkerResult
from trade_ops.savedruns import BenchResult, Interval

__all__ = ["LATE_START_MS", "WorkerSlot", "merge_workers", "worker_problems"]

# A worker ready in time waits for the start (late 0); beyond this it missed it, and its first
# requests were sent late by the generator, not by the target.
LATE_START_MS = 10.0
_COUNTERS = ("requests", "ok", "errors", "rejections", "warmup_requests", "connections")
_SUMMED_HISTOGRAMS = ("latency", "service_time", "schedule_lag", "lag_free")


@dataclass
class WorkerSlot:
    """One worker as the coordinator saw it: its shard, how it ended, and what it reported."""

    shard: int
    where: str  # "pid 4711", "container trade-ops-bench-1a2b-0", "10.0.0.2 (host-b)"
    exit: str | None = None  # how it ended when that is known: "exit 0", "killed by SIGKILL"
    doc: WorkerResult | None = None  # what it reported, None if it never wrote a result

    @property
    def name(self) -> str:
        return f"worker {self.shard} ({self.where})"


def _decode_sum(texts: list[str]) -> HdrHistogram:
    h = hist.new()
    for text in texts:
        h.decode_and_add(text.encode("ascii"))
    return h


def worker_problems(slots: list[WorkerSlot], slos: list[Slo], max_lag_ms: float | None) -> list[str]:
    """Why each untrusted worker is untrusted, one line each naming it."""
    out: list[str] = []
    for s in slots:
        doc = s.doc
        if doc is None:
            out.append(f"{s.name} wrote no result ({s.exit or 'still running at the deadline'})")
        elif doc.status != "done" or doc.results is None:
            out.append(f"{s.name} failed: {doc.error}")
        elif doc.late_ms > LATE_START_MS:
            out.append(f"{s.name} on {doc.host.name} started {doc.late_ms:.0f} ms after the start "
                       "time: it was not ready in time")
        elif doc.results.invalid_reason:
            out.append(f"{s.name} on {doc.host.name}: {doc.results.invalid_reason}")
        elif reason := lag_reason(doc.results, slos, max_lag_ms):
            out.append(f"{s.name} on {doc.host.name} lagged: {reason}")
    return out


def _intervals(docs: list[WorkerResult], span_s: float) -> list[Interval[HdrHistogram]]:
    slots: dict[float, tuple[Interval[HdrHistogram], list[str], list[str]]] = {}
    for doc in docs:
        for iv in doc.intervals:
            key = round(iv.start_s, 6)
            if key not in slots:
                slots[key] = (live_interval(iv.start_s, iv.end_s), [], [])
            merged, lat, svc = slots[key]
            merged.count += iv.count
            merged.completed = (merged.completed or 0) + (iv.completed or 0)
            merged.errors += iv.errors
            lat.append(iv.latency)
            svc += [iv.service_time] if iv.service_time is not None else []
    out = []
    for key in sorted(slots):
        merged, lat, svc = slots[key]
        merged.latency, merged.service_time = _decode_sum(lat), _decode_sum(svc)
        merged.partial = merged.end_s > span_s + 1e-6
        out.append(merged)
    return out


def merge_workers(docs: list[WorkerResult], rate: float) -> Analysis:
    """The done workers' results as one run's Analysis (its result without a verdict yet:
    the caller judges the merged result once)."""
    hs = {k: _decode_sum([d.histograms[k] for d in docs]) for k in _SUMMED_HISTOGRAMS}
    rs = [d.results or BenchResult() for d in docs]
    by_kind, samples = errors_of(rs)
    measured = [d for d, r in zip(docs, rs, strict=True) if r.requests]
    first = min((d.first_s for d in measured), default=0.0)
    duration = max((d.last_done_s for d in measured), default=0.0) - first
    span = max((d.last_intended_s for d in measured), default=0.0) + 1.0 / rate
    n = sum(r.requests for r in rs)
    result = BenchResult(
        model="open",
        requests=n, ok=sum(r.ok for r in rs), errors=sum(r.errors for r in rs),
        rejections=sum(r.rejections for r in rs), warmup_requests=sum(r.warmup_requests for r in rs),
        connections=sum(r.connections for r in rs),
        errors_by_kind=dict(sorted(by_kind.items())),
        error_samples=samples,
        interrupted=any(r.interrupted for r in rs),
        generator_nice=rs[0].generator_nice if rs else None,
        generator_realtime=all(r.generator_realtime for r in rs) if rs else False,
        rate=round(n / duration, 2) if duration > 0 else 0.0,
        target_rate=rate,
        duration_s=round(duration, 3),
        valid=True,
        invalid_reason=None if n else "no requests were measured (no worker reported any)",
        latency_ms=summary(hs["latency"]),
        latency_without_lag_ms=summary(hs["lag_free"]),
        latency_without_lag_noise_ms=noise_bounds_ms(hs["lag_free"]),
        service_time_ms=summary(hs["service_time"]),
        schedule_lag_ms=summary(hs["schedule_lag"]),
        corrected=True,
    )
    return Analysis(result, hs["latency"], hs["service_time"], hs["schedule_lag"], _intervals(docs, span),
                    hs["lag_free"])
