"""One shard of a bench run: `trade-ops bench worker --shard i/N --start-at T --job FILE`.

A run of N workers has one schedule: request k is due at T + k/rate. Worker i sends the
requests i, i+N, i+2N, ... of it (as k6's execution segments split a test), from the same
load generator as a single-process run (loadgen.py, open loop, latency from each request's
intended start). What it measured is written as data (WorkerResult), never as a verdict:
the coordinator (coordinator.py) adds the histograms of all workers (merge.py) and
judges once.

    {"format": "trade-ops-worker/1", "run_id", "shard", "shards", "status": "done"|"failed",
     "error": why it failed | null,
     "host": {"name", "pid", "cpu", "cores", "platform", "python", "loadavg"},
     "late_ms": how long after T its schedule began (0: it was waiting for T),
     "cpu_s": its own CPU time over the load, "wall_s",
     "first_s", "last_intended_s", "last_done_s": measured requests, seconds from the origin
        (T plus the warm-up: where interval 0 starts),
     "results": its own figures (the --json document of a run, counters and errors with samples),
     "histograms": {"latency", "service_time", "schedule_lag", "lag_free"} (HDR V2 encoding, us),
     "intervals": [{"start_s", "end_s", "count", "errors", "partial", "latency", "service_time"}],
     "samples_us": every measured latency (only when the job asks: a test checks the merge)}

T is wall-clock time (Unix seconds): the workers' hosts are assumed to keep their clocks
synchronised (NTP); each maps T onto its own monotonic clock once, before the load.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from trade_ops.bench import hist
from trade_ops.bench.loadgen import LoadSpec, Raw, clock, run_load
from trade_ops.bench.results import analyse
from trade_ops.bench.runs import host_meta
from trade_ops.bench.target import CONNECTION, PROTOCOL, Target
from trade_ops.bench.targets import contract_for, make_target
from trade_ops.errors import TradeOpsError, UsageError
from trade_ops.savedruns import BenchResult, Host, Interval

__all__ = ["FORMAT", "WORKER_TARGETS", "Job", "WorkerResult", "job_target", "parse_shard", "parse_start",
           "read_result", "run_shard", "shard_spec", "worker_argv", "write_result"]

FORMAT = "trade-ops-worker/1"
# HTTP targets only: fill and sink wait for their answer on the stack's NATS, one connection each
WORKER_TARGETS = ("oms", "risk", "gateway", "http", "null")


@dataclass
class Job:
    """What every worker of one run is given (the same for all; the shard is each one's own)."""

    run_id: str  # one per run: the orders' client_order_ids are bench-RUN-k, k the global index
    target: str
    url: str  # the target's base URL (the full URL for http and null)
    definition: dict[str, Any]  # the scenario's effective definition, flags applied
    shards: int
    start_at: float  # Unix time of request 0 of the whole schedule
    method: str | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # ${VAR} read from each worker's environment
    allow_remote: bool = False
    operator: bool = False  # send the stack's operator token (from run_dir, else the environment)
    foreign: bool = False  # a foreign OMS: orders follow its OpenAPI schema
    contract: dict[str, Any] | None = None  # the stack file's [contracts.order] table, over the schema
    run_dir: str | None = None
    keep_samples: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Job:
        try:
            return cls(**doc)
        except TypeError as exc:
            raise UsageError(f"not a bench worker job: {exc}") from None

    @classmethod
    def read(cls, path: Path) -> Job:
        try:
            return cls.from_json(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError) as exc:
            raise UsageError(f"cannot read the worker job {path}: {exc}") from None


def parse_shard(text: str) -> tuple[int, int]:
    """'1/4' -> (1, 4): shard 1 of 4 (shards count from 0)."""
    i, sep, n = text.partition("/")
    try:
        shard, shards = int(i), int(n)
    except ValueError:
        shard = shards = -1
    if not sep or shards < 1 or not 0 <= shard < shards:
        raise UsageError(f"--shard {text!r} must be i/N with 0 <= i < N, for example --shard 0/4")
    return shard, shards


def parse_start(text: str) -> float:
    """Unix seconds (1765000000.5) or ISO 8601 with a zone (2026-12-05T17:00:00Z)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise UsageError(f"--start-at {text!r} must be Unix seconds or ISO 8601 with a zone "
                         "(2026-12-05T17:00:00Z)")
    return when.timestamp()


def shard_spec(job: Job, shard: int) -> LoadSpec:
    """The whole run's open-loop load, of which this worker sends every shards-th request."""
    from trade_ops.bench.runner import load_spec

    spec = load_spec(job.definition)
    if spec.model != "open":
        raise UsageError("bench workers split an open-loop schedule: give --rate (a closed loop has none)")
    spec.shard, spec.shards = shard, job.shards
    spec.start_at = clock() + (job.start_at - time.time())
    return spec


def _operator_headers(job: Job) -> dict[str, str]:
    if not job.operator:
        return {}
    from services import env
    from trade_ops.credentials import operator_headers

    found = operator_headers(Path(job.run_dir)) if job.run_dir else {}
    token = os.environ.get(env.setting_var("operator_token"))
    return found or ({"Authorization": f"Bearer {token}"} if token else {})


def job_target(job: Job) -> Target:
    from trade_ops.bench.runner import expand_headers

    if job.target not in WORKER_TARGETS:
        raise UsageError(f"bench workers send HTTP requests: target {job.target!r} is not one of "
                         f"{', '.join(WORKER_TARGETS)}")
    contract = contract_for(job.target, job.url, job.contract, foreign=job.foreign)
    return make_target(job.target, job.url, method=job.method, body=job.body,
                       headers={**_operator_headers(job), **expand_headers(job.headers)},
                       order=job.definition.get("order"), allow_remote=job.allow_remote,
                       run_id=job.run_id, contract=contract)


class WorkerResult(msgspec.Struct, kw_only=True):
    """What one worker measured (the fields drawn above); status failed, with the error, when
    it could not run."""
    format: str = FORMAT
    run_id: str
    shard: int
    shards: int
    host: Host  # with its name and the worker's pid
    status: str  # done | failed
    error: str | None = None
    late_ms: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    first_s: float = 0.0
    last_intended_s: float = 0.0
    last_done_s: float = 0.0
    results: BenchResult | None = None
    histograms: dict[str, str] = {}
    intervals: list[Interval[str]] = []
    samples_us: list[int] | None = None


def _span(raw: Raw, origin: float) -> tuple[float, float, float]:
    """first_s, last_intended_s, last_done_s of the measured requests."""
    measured = [j for j in range(len(raw)) if raw.index[j] >= raw.warmup_n]
    if not measured:
        return 0.0, 0.0, 0.0
    return (min(raw.intended[j] for j in measured) - origin, max(raw.intended[j] for j in measured) - origin,
            max(raw.done[j] for j in measured) - origin)


def _samples_us(raw: Raw) -> list[int]:
    return [int((raw.done[j] - raw.intended[j]) * 1e6 + 0.5) for j in range(len(raw))
            if raw.index[j] >= raw.warmup_n and raw.kind[j] not in (CONNECTION, PROTOCOL)]


def _host() -> Host:
    return msgspec.structs.replace(host_meta(), name=socket.gethostname(), pid=os.getpid())


def run_shard(job: Job, shard: int) -> WorkerResult:
    """Run shard `shard` of the job; its result document (status failed, with the reason,
    when it could not run)."""
    try:
        target = job_target(job)
        spec = shard_spec(job, shard)
        cpu0, wall0 = time.process_time(), clock()
        raw = run_load(target, spec)
        cpu_s, wall_s = time.process_time() - cpu0, clock() - wall0
    except TradeOpsError as exc:
        return WorkerResult(run_id=job.run_id, shard=shard, shards=job.shards, host=_host(), status="failed",
                            error=exc.message)
    origin = spec.start_at + spec.warmup_n / spec.rate  # type: ignore[operator]
    a = analyse(raw, spec, interval_s=float(job.definition.get("interval_s", 1.0)), origin=origin)
    histograms = {**a.histograms_json(), "lag_free": hist.encode(a.lag_free)}
    first, last_intended, last_done = _span(raw, origin)
    return WorkerResult(run_id=job.run_id, shard=shard, shards=job.shards, host=_host(), status="done",
                        late_ms=round(raw.late_s * 1000, 3), cpu_s=round(cpu_s, 4), wall_s=round(wall_s, 4),
                        first_s=first, last_intended_s=last_intended, last_done_s=last_done,
                        results=a.result, histograms=histograms, intervals=a.intervals_saved(),
                        samples_us=_samples_us(raw) if job.keep_samples else None)


def write_result(doc: WorkerResult, path: Path | None) -> None:
    """To path (whole or not at all), or as one JSON line on stdout."""
    data = msgspec.json.encode(doc)
    if path is None:
        os.write(1, data + b"\n")
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def read_result(data: bytes) -> WorkerResult | None:
    """A worker's result, or None when the bytes are not one."""
    try:
        doc = msgspec.json.decode(data, type=WorkerResult)
    except msgspec.DecodeError:
        return None
    return doc if doc.format == FORMAT else None


def worker_argv(shard: int, shards: int, start_at: float, job: str, out: str | None = None) -> list[str]:
    """The worker command after the interpreter: `-m trade_ops bench worker ...`."""
    argv = ["-m", "trade_ops", "bench", "worker", "--shard", f"{shard}/{shards}", "--start-at",
            f"{start_at:.6f}", "--job", job]
    return [*argv, "--out", out] if out else argv
