"""The generator's own cost, measured against the null endpoint in a separate process.

overhead: sequential requests (one in flight) to an endpoint that does nothing; their
service time is what the generator, the loopback and a minimal server add to any
measurement. max_rate: the highest open-loop rate the generator keeps its schedule at
(valid run, no errors, p99 < 10 ms). The result is cached in the run directory, so every
saved run records a calibration without re-running it.
"""

from __future__ import annotations

import time

import msgspec
import orjson

from trade_ops.bench.findmax import find_max
from trade_ops.bench.loadgen import LoadSpec, run_load
from trade_ops.bench.null_server import NullServer
from trade_ops.bench.results import analyse
from trade_ops.bench.runs import host_meta
from trade_ops.bench.slo import parse_slos
from trade_ops.bench.targets import make_target
from trade_ops.bench.verdict import judge
from trade_ops.rundir import RunDir
from trade_ops.savedruns import BenchResult, Calibration, FindMax, Step

__all__ = ["cached", "calibrate", "calibration_for_save"]

MAX_RATE_SLOS = ("p99<10ms", "errors==0")


def _overhead(url: str, requests: int) -> BenchResult:
    target = make_target("null", url)
    spec = LoadSpec("closed", concurrency=1, requests=requests, warmup_requests=max(requests // 10, 50))
    return analyse(run_load(target, spec), spec).result


def _max_rate(url: str, step_s: float, limit: float) -> FindMax:
    target = make_target("null", url)
    slos = parse_slos(list(MAX_RATE_SLOS))

    def measure(rate: float) -> Step:
        spec = LoadSpec("open", rate=rate, duration_s=step_s, warmup_s=0.3, concurrency=256)
        r = analyse(run_load(target, spec), spec).result
        judge(r, slos)  # validity: whether the generator's own lag decides p99<10ms or the figures
        return Step(rate=rate, passed=bool(r.passed) and r.rate >= 0.95 * rate, valid=r.valid,
                    rate_achieved=r.rate, p99_ms=r.latency_ms.p99, lag_p99_ms=r.schedule_lag_ms.p99)

    return find_max(measure, 1000.0, limit, precision=0.1, max_steps=10)


def calibrate(*, full: bool = True, requests: int = 2000, step_s: float = 2.0,
              limit: float = 40000.0) -> Calibration:
    """The overhead, and the max rate when `full`, measured now, with the host."""
    with NullServer() as url:
        overhead = _overhead(url, requests)
        search = _max_rate(url, step_s, limit) if full else None
    return Calibration(overhead_p50_ms=overhead.service_time_ms.p50,
                       overhead_p99_ms=overhead.service_time_ms.p99, overhead_requests=overhead.requests,
                       max_rate=search.max_rate if search else None,
                       max_rate_search=search, measured_at=time.time(),
                       host=host_meta())


def cached(run_dir: RunDir) -> Calibration | None:
    try:
        return msgspec.json.decode(run_dir.calibration.read_bytes(), type=Calibration)
    except (OSError, msgspec.DecodeError):  # none yet, or of another shape: measured again
        return None


def save_cache(run_dir: RunDir, calibration: Calibration) -> None:
    run_dir.path.mkdir(parents=True, exist_ok=True)
    data = orjson.dumps(msgspec.to_builtins(calibration), option=orjson.OPT_INDENT_2)
    run_dir.calibration.write_bytes(data)


def calibration_for_save(run_dir: RunDir) -> Calibration:
    """The cached calibration, or a short one (overhead only), cached for next time."""
    found = cached(run_dir)
    if found is None:
        found = calibrate(full=False, requests=1000)
        save_cache(run_dir, found)
    return found
