"""Raw per-request records -> the result document: three HDR histograms (corrected
latency, service time, schedule lag), per-interval histograms, errors by kind, validity.

Latency and service-time histograms hold every request that got an answer or timed out;
connection and protocol failures have no meaningful duration and are only counted.

Validity. Corrected latency includes the generator's own schedule lag. A run is invalid
when that lag matters: when it would change an SLO verdict (the SLOs checked again on the
latency from dispatch, which removes the lag and still counts a backlog wait), or when it
moves p50, p90 or p99 by more than the percentile's own sampling noise (beyond the upper
end of its 95% confidence interval from order statistics, so more requests make the test
stricter) and by more than MATERIAL_FLOOR_MS and MATERIAL_SHARE of its value. A fixed
lag bound (`max_lag_ms`) is applied only when the user sets one.

An interval is partial when the measured schedule does not cover all of it (the last
second of a 10.4 s run); partial intervals are saved, marked, and left out of comparisons.
Requests belong to the interval of their intended start; each interval also counts the
answers that came back in it (`completed`), which is what the target delivered then.

Overload. An open-loop run asks for a rate; the target delivers what it can. A run whose
answers came back slower than they were asked for (the delivered rate, answers over the
span from the first answer to the last, below the target by more than OVERLOAD_TOLERANCE)
is flagged overloaded: its latencies are real, and they include the queue that grew.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgspec
from hdrh.histogram import HdrHistogram

from trade_ops.bench import hist
from trade_ops.bench.loadgen import REJECTION_SAMPLES, SAMPLES_PER_KIND, LoadSpec, Raw
from trade_ops.bench.slo import Slo
from trade_ops.bench.target import CONNECTION, HTTP_ERROR, KIND_NAMES, OK, PROTOCOL, REJECTED
from trade_ops.savedruns import BenchResult, Interval, Latency

__all__ = ["MATERIAL_FLOOR_MS", "MATERIAL_SHARE", "OVERLOAD_TOLERANCE", "Analysis", "analyse", "encoded",
           "errors_of", "lag_reason", "live_interval", "merge", "overload_reason", "summary"]

MATERIAL_FLOOR_MS = 1.0  # a lag moving a percentile by less is within the noise of a busy host ...
MATERIAL_SHARE = 0.05  # ... as is one moving it by less than this share of its value
OVERLOAD_TOLERANCE = 0.05  # delivered this much below the target rate: overloaded


def live_interval(start_s: float, end_s: float) -> Interval[HdrHistogram]:
    """An interval that histograms are recorded into, its counters at 0."""
    return Interval(start_s=start_s, end_s=end_s, completed=0, partial=False, latency=hist.new(),
                    service_time=hist.new())


def encoded(iv: Interval[HdrHistogram]) -> Interval[str]:
    """The interval as a saved run keeps it: its histograms in HDR's V2 encoding."""
    return Interval(start_s=round(iv.start_s, 3), end_s=round(iv.end_s, 3), count=iv.count,
                    completed=iv.completed, errors=iv.errors, partial=iv.partial,
                    latency=hist.encode(iv.latency),
                    service_time=hist.encode(iv.service_time) if iv.service_time is not None else None)


def summary(h: HdrHistogram) -> Latency:
    """The histogram's percentiles, max and mean in ms."""
    return Latency(**hist.summary_ms(h))


@dataclass
class Analysis:
    result: BenchResult  # the --json document (its verdict filled in by verdict.judge)
    latency: HdrHistogram
    service_time: HdrHistogram
    schedule_lag: HdrHistogram
    intervals: list[Interval[HdrHistogram]]
    lag_free: HdrHistogram = field(default_factory=hist.new)  # latency from dispatch: lag removed

    def histograms_json(self) -> dict[str, str]:
        return {"latency": hist.encode(self.latency), "service_time": hist.encode(self.service_time),
                "schedule_lag": hist.encode(self.schedule_lag)}

    def intervals_saved(self) -> list[Interval[str]]:
        return [encoded(iv) for iv in self.intervals]


def _invalid_reason(raw: Raw, spec: LoadSpec, n: int) -> str | None:
    if n == 0:
        return "no requests were measured (the run ended during warm-up or sent nothing)"
    if raw.stopped_by_time:
        return (f"the run hit its time bound ({spec.max_time_s:g} s) after {raw.scheduled:,} of "
                f"{raw.planned:,} requests")
    return None


def noise_bounds_ms(h: HdrHistogram) -> dict[str, float]:
    """For p50, p90, p99: the upper end of the percentile's 95% confidence interval from its
    order statistic (normal approximation to the binomial rank), in ms."""
    n = h.get_total_count()
    out: dict[str, float] = {}
    for key, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
        rank = n * q + 1.96 * math.sqrt(n * q * (1 - q)) + 1
        out[key] = round(h.get_value_at_percentile(min(100.0, 100.0 * rank / n)) / 1000.0, 4) if n else 0.0
    return out


def lag_reason(result: BenchResult, slos: list[Slo], max_lag_ms: float | None = None) -> str | None:
    """Why the generator's schedule lag makes this (open-loop) run invalid, or None."""
    if not result.corrected or not result.requests:
        return None
    lag_p99 = result.schedule_lag_ms.p99
    advice = "lower the rate or free the CPU"
    if max_lag_ms is not None and lag_p99 > max_lag_ms:
        return f"schedule lag p99 {lag_p99:.1f} ms > --max-lag {max_lag_ms:g} ms; {advice}"
    with_lag, without = result.latency_ms, result.latency_without_lag_ms
    noise = result.latency_without_lag_noise_ms
    for key in ("p50", "p90", "p99"):
        lagged, free = getattr(with_lag, key), getattr(without, key)
        material = lagged - free > max(MATERIAL_FLOOR_MS, MATERIAL_SHARE * free)
        if material and lagged > noise.get(key, free):
            return (f"the generator's schedule lag (p99 {lag_p99:.1f} ms) moves latency {key} from "
                    f"{free:.2f} to {lagged:.2f} ms, beyond its sampling noise "
                    f"(up to {noise.get(key, free):.2f} ms); {advice}")
    lag_free = msgspec.structs.replace(result, latency_ms=without)
    for slo in slos:
        if slo.check(result).passed != slo.check(lag_free).passed:
            return (f"the generator's schedule lag (p99 {lag_p99:.1f} ms) decides SLO {slo.expr}: "
                    f"{slo.check(result).observed} with it, {slo.check(lag_free).observed} without; "
                    f"{advice}")
    return None


def overload_reason(result: BenchResult) -> str | None:
    """Why an open-loop run is flagged overloaded (delivered below its target rate), or None."""
    target, delivered = result.target_rate, result.delivered_rate
    if not target or delivered is None or delivered >= target * (1 - OVERLOAD_TOLERANCE):
        return None
    return (f"overloaded: delivered {delivered:,.1f}/s of the {target:,.4g}/s asked "
            f"({(delivered / target - 1) * 100:+.1f}%); the target could not keep up, and its "
            "latencies include the queue that grew")


def _delivered(done: list[float]) -> float | None:
    """Answers per second from the first answer to the last."""
    if len(done) < 2 or max(done) <= min(done):
        return None
    return (len(done) - 1) / (max(done) - min(done))


def analyse(raw: Raw, spec: LoadSpec, *, interval_s: float = 1.0, origin: float | None = None) -> Analysis:
    """origin: where interval 0 starts (default: the first measured request's intended start);
    a worker gives the whole run's, so every worker's intervals are the same slots."""
    lat, svc, lag, lag_free = hist.new(), hist.new(), hist.new(), hist.new()
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
    base = first if origin is None else origin
    intervals: dict[int, Interval[HdrHistogram]] = {}
    for j in measured:
        n += 1
        kind = raw.kind[j]
        if kind == REJECTED:
            rejections += 1
        elif kind != OK:
            errors += 1
            name = f"http_{raw.status[j]}" if kind == HTTP_ERROR else KIND_NAMES[kind]
            by_kind[name] = by_kind.get(name, 0) + 1
        slot = int((raw.intended[j] - base) / interval_s)  # type: ignore[operator]
        iv = intervals.get(slot)
        if iv is None:
            iv = intervals[slot] = live_interval(slot * interval_s, (slot + 1) * interval_s)
        iv.count += 1
        iv.errors += kind not in (OK, REJECTED)
        hist.record_s(lag, raw.dispatched[j] - raw.intended[j])
        if kind in (CONNECTION, PROTOCOL):
            continue
        latency, service = raw.done[j] - raw.intended[j], raw.done[j] - raw.sent[j]
        hist.record_s(lat, latency)
        hist.record_s(lag_free, raw.done[j] - raw.dispatched[j])
        hist.record_s(svc, service)
        hist.record_s(iv.latency, latency)
        hist.record_s(iv.service_time, service)
    duration = (last - first) if n else 0.0  # type: ignore[operator]
    done = [raw.done[j] for j in measured]
    for t in done:  # what came back when: the delivered rate of each interval
        back = intervals.get(int((t - base) / interval_s))  # type: ignore[operator]
        if back is not None:
            back.completed = (back.completed or 0) + 1
    delivered = _delivered(done)
    if n:  # the schedule's measured span: an interval reaching past it is partial
        spacing = 1.0 / spec.rate if spec.model == "open" and spec.rate else 0.0
        span = max(raw.intended[j] for j in measured) - base + spacing  # type: ignore[operator]
        for iv in intervals.values():
            iv.partial = iv.end_s > span + 1e-6
    reason = _invalid_reason(raw, spec, n)
    result = BenchResult(
        model=spec.model,
        requests=n,
        ok=n - errors - rejections,
        errors=errors,
        errors_by_kind=dict(sorted(by_kind.items())),
        error_samples={k: v for k, v in raw.error_samples.items() if k != REJECTION_SAMPLES},
        rejection_samples=raw.error_samples.get(REJECTION_SAMPLES, []),
        interrupted=raw.interrupted,
        generator_nice=raw.generator_nice,
        generator_realtime=raw.generator_realtime,
        rejections=rejections,
        rate=round(n / duration, 2) if duration > 0 else 0.0,
        target_rate=spec.rate if spec.model == "open" else None,
        delivered_rate=round(delivered, 2) if delivered is not None else None,
        duration_s=round(duration, 3),
        warmup_requests=sum(1 for j in range(len(raw)) if raw.index[j] < raw.warmup_n
                            or raw.sent[j] < raw.warmup_until),
        connections=raw.connections,
        valid=reason is None,
        invalid_reason=reason,
        latency_ms=summary(lat),
        latency_without_lag_ms=summary(lag_free),
        latency_without_lag_noise_ms=noise_bounds_ms(lag_free),
        service_time_ms=summary(svc),
        schedule_lag_ms=summary(lag),
        corrected=spec.model == "open",
    )
    result.overload = overload_reason(result)
    result.overloaded = result.overload is not None
    return Analysis(result, lat, svc, lag, [intervals[k] for k in sorted(intervals)], lag_free)


def errors_of(rs: list[BenchResult]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Several results' errors as one: counts by kind summed, the first samples of each kind kept."""
    by_kind: dict[str, int] = {}
    samples: dict[str, list[str]] = {}
    for r in rs:
        for k, v in r.errors_by_kind.items():
            by_kind[k] = by_kind.get(k, 0) + v
        for k, lines in r.error_samples.items():
            samples[k] = (samples.get(k, []) + lines)[:SAMPLES_PER_KIND]
    return by_kind, samples


def merge(analyses: list[Analysis]) -> Analysis:
    """Repeated runs as one: histograms added, counts summed, intervals one after another."""
    if len(analyses) == 1:
        return analyses[0]
    lat, svc, lag = hist.new(), hist.new(), hist.new()
    free = hist.new()
    intervals: list[Interval[HdrHistogram]] = []
    offset = 0.0
    for a in analyses:
        lat.add(a.latency)
        svc.add(a.service_time)
        lag.add(a.schedule_lag)
        free.add(a.lag_free)
        intervals += [msgspec.structs.replace(iv, start_s=iv.start_s + offset, end_s=iv.end_s + offset)
                      for iv in a.intervals]
        offset += max((iv.end_s for iv in a.intervals), default=0.0)
    rs = [a.result for a in analyses]
    by_kind, samples = errors_of(rs)
    n = sum(r.requests for r in rs)
    duration = sum(r.duration_s for r in rs)
    invalid = [r.invalid_reason for r in rs if r.invalid_reason]
    # the slowest repeat's delivery speaks for the run: one overloaded repeat flags it
    delivered = [r.delivered_rate for r in rs if r.delivered_rate is not None]
    overload = next((r.overload for r in rs if r.overload), None)
    result = msgspec.structs.replace(
        rs[0], requests=n, ok=sum(r.ok for r in rs), errors=sum(r.errors for r in rs),
        rejections=sum(r.rejections for r in rs), warmup_requests=sum(r.warmup_requests for r in rs),
        connections=sum(r.connections for r in rs),
        errors_by_kind=dict(sorted(by_kind.items())), error_samples=samples,
        rejection_samples=[line for r in rs for line in r.rejection_samples][:SAMPLES_PER_KIND],
        interrupted=any(r.interrupted for r in rs),
        rate=round(n / duration, 2) if duration > 0 else 0.0, duration_s=round(duration, 3),
        valid=not invalid, invalid_reason=invalid[0] if invalid else None,
        latency_ms=summary(lat), latency_without_lag_ms=summary(free),
        latency_without_lag_noise_ms=noise_bounds_ms(free),
        service_time_ms=summary(svc), schedule_lag_ms=summary(lag),
        delivered_rate=min(delivered) if delivered else None, overload=overload,
        overloaded=overload is not None)
    return Analysis(result, lat, svc, lag, intervals, free)
