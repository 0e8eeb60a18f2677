"""doctor and bench results as Prometheus text, built with prometheus_client's metric
families in one CollectorRegistry (so no family is written twice) and written by its text
encoder (generate_latest, through write_to_textfile and the exporter's HTTP server).

Names follow Prometheus' conventions: base units (`_seconds`), counters end in `_total`,
a check's result is a 0/1 gauge as the blackbox exporter's `probe_success` is.

    doctor  trade_ops_doctor_check_success{check,group,component}    1 pass or warn, 0 fail
            trade_ops_doctor_check_status{check,group,status}        1 for the check's status
            trade_ops_doctor_check_duration_seconds{check,group}
            trade_ops_doctor_success, _duration_seconds, _checks{status}, _last_run_timestamp_seconds
            trade_ops_doctor_runs_total                               (doctor --serve)
    bench   trade_ops_bench_request_duration_seconds (histogram, from the HDR buckets; latency from
            each request's intended start), _requests_total, _errors_total, _error_responses_total{kind},
            _rejections_total, _slo_success{slo}, _success, _valid, _duration_seconds,
            _last_run_timestamp_seconds; every bench family has the labels target and scenario
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, get_args

from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from trade_ops.bench import hist
from trade_ops.doctor.model import DoctorReport, Status
from trade_ops.savedruns import BenchResult

__all__ = ["LATENCY_BUCKETS_S", "FamiliesCollector", "bench_families", "doctor_families", "serve_metrics",
           "write_metrics"]

# Prometheus' default buckets, extended below 5 ms and above 10 s (an order takes ~1-10 ms).
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                     1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STATUSES: tuple[str, ...] = get_args(Status)  # pass, warn, fail, skip


class FamiliesCollector(Collector):
    """A Collector over a function returning the families: called on every collect (scrape)."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return list(self.families())


def _registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def write_metrics(path: Path, families: Sequence[Metric]) -> Path:
    """The families, in Prometheus text, written atomically (as node_exporter's textfile
    collector wants: a scrape never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), _registry(FamiliesCollector(lambda: families)))
    return path


def doctor_families(doc: DoctorReport, runs: int | None = None,
                    ran_at: float | None = None) -> list[Metric]:
    """A doctor report (one run) as metric families; `runs`: how many runs a server made,
    `ran_at`: when this one ended (Unix time) [default: now]."""
    p = "trade_ops_doctor"
    success = GaugeMetricFamily(f"{p}_check_success", "1 when the check passed or warned, 0 when it failed "
                                "(skipped checks are left out).", labels=["check", "group", "component"])
    status = GaugeMetricFamily(f"{p}_check_status", "1 for the status the check ended in, 0 for the others.",
                               labels=["check", "group", "status"])
    duration = GaugeMetricFamily(f"{p}_check_duration_seconds", "How long the check took.",
                                 labels=["check", "group"])
    for check in doc.checks:
        name, group = check.name, check.group
        if check.status != "skip":
            success.add_metric([name, group, check.component or ""], 0.0 if check.status == "fail" else 1.0)
        for state in STATUSES:
            status.add_metric([name, group, state], 1.0 if check.status == state else 0.0)
        duration.add_metric([name, group], check.duration_ms / 1000)
    by_status = GaugeMetricFamily(f"{p}_checks", "Checks by the status they ended in.", labels=["status"])
    for state in STATUSES:
        by_status.add_metric([state], float(sum(c.status == state for c in doc.checks)))
    families: list[Metric] = [
        success, status, duration, by_status,
        GaugeMetricFamily(f"{p}_success", "1 when the doctor's gate passed (exit code 0).",
                          value=1.0 if doc.exit_code == 0 else 0.0),
        GaugeMetricFamily(f"{p}_duration_seconds", "How long the doctor run took.",
                          value=doc.duration_ms / 1000),
        GaugeMetricFamily(f"{p}_last_run_timestamp_seconds", "When the doctor run ended (Unix time).",
                          value=ran_at if ran_at is not None else time.time()),
    ]
    if runs is not None:
        families.append(CounterMetricFamily(f"{p}_runs", "Doctor runs made by this server.", value=runs))
    return families


def bench_families(result: BenchResult, latency: HdrHistogram) -> list[Metric]:
    """A bench result and its corrected-latency HDR histogram (microseconds) as metric families."""
    p = "trade_ops_bench"
    keys, values = ["target", "scenario"], [result.target, result.scenario]

    def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
        g = GaugeMetricFamily(f"{p}_{name}", doc, labels=keys)
        g.add_metric(values, value)
        return g

    def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
        c = CounterMetricFamily(f"{p}_{name}", doc, labels=keys)
        c.add_metric(values, value)
        return c

    cumulative = hist.counts_at_or_below(latency, [b * 1e6 for b in LATENCY_BUCKETS_S])
    total = latency.get_total_count()
    histogram = HistogramMetricFamily(
        f"{p}_request_duration_seconds", "Latency of each measured request from its intended start "
        "(corrected for coordinated omission), from the run's HDR histogram.", labels=keys)
    histogram.add_metric(values, [*((f"{b:g}", float(n)) for b, n in zip(LATENCY_BUCKETS_S, cumulative,
                                                                          strict=True)),
                                  ("+Inf", float(total))],
                         sum_value=hist.mean_us(latency) * total / 1e6)
    kinds = CounterMetricFamily(f"{p}_error_responses", "Errors by kind (http_500, timeout, connection, "
                                "...).", labels=[*keys, "kind"])
    for kind, n in result.errors_by_kind.items():
        kinds.add_metric([*values, kind], float(n))
    slo = GaugeMetricFamily(f"{p}_slo_success", "1 when the SLO was met.", labels=[*keys, "slo"])
    for check in result.slo:
        slo.add_metric([*values, check.expr], 1.0 if check.passed else 0.0)
    return [
        histogram,
        counter("requests", "Measured requests (warm-up excluded).", float(result.requests)),
        counter("errors", "Measured requests that failed.", float(result.errors)),
        kinds,
        counter("rejections", "Orders the target answered with a rejection (not errors).",
                float(result.rejections)),
        slo,
        gauge("success", "1 when every gate passed (exit code 0).", 1.0 if result.passed else 0.0),
        gauge("valid", "1 when the measurement is valid (the generator kept its schedule).",
              1.0 if result.valid else 0.0),
        gauge("duration_seconds", "The measured span of the run.", result.duration_s),
        gauge("last_run_timestamp_seconds", "When the run ended (Unix time).", time.time()),
    ]


def serve_metrics(host: str, port: int, families: Callable[[], Iterable[Metric]]) -> tuple[Any, Any]:
    """Serve `families()` on http://HOST:PORT/metrics, called on each scrape, in a thread
    (prometheus_client's threading WSGI server); returns (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(port, host, _registry(FamiliesCollector(families)))
