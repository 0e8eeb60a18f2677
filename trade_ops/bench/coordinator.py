"""`trade-ops bench TARGET --workers N`: one run on N workers, merged and judged once.

The coordinator resolves the scenario and the target as a single-process run does, writes
one job (worker.Job) with one start time, and has N workers run it: local processes by
default (`--runtime process`), containers of the project's image (`--runtime docker`),
or workers started elsewhere that join through the stack's NATS (join.py). No
scheduler of our own: it starts what it is told to and waits for each to end.

It then adds the workers' histograms (merge.py), names every worker that failed, started
late or lagged (the run is then INVALID, exit 4), evaluates the SLOs once on the merged
result, and saves the run in the same format as a single-process run, with a `workers`
list beside the figures, so `report perf` compares a 1-worker run with an N-worker run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec
import orjson
from rich.console import Console

from trade_ops.bench.cpu import GENERATOR, CpuMeter
from trade_ops.bench.loadgen import LoadSpec
from trade_ops.bench.merge import WorkerSlot, merge_workers, worker_problems
from trade_ops.bench.null_server import NullServer
from trade_ops.bench.results import Analysis
from trade_ops.bench.runner import (
    BenchOutcome,
    BenchRequest,
    _base_url,
    _settings,
    bench_command,
    check_target,
    contract_table,
    load_spec,
    secret_header_vars,
)
from trade_ops.bench.runs import build_run, conditions_between, host_conditions, refuse_existing, save_run
from trade_ops.bench.scenario import Scenario, default_scenario, resolve
from trade_ops.bench.slo import Slo, parse_slos
from trade_ops.bench.target import Target
from trade_ops.bench.verdict import judge, with_default_gates
from trade_ops.bench.worker import WORKER_TARGETS, Job, WorkerResult, job_target, read_result, worker_argv
from trade_ops.errors import ExitCode, UsageError
from trade_ops.savedruns import HostLoad, WorkerRow

__all__ = ["LAUNCHERS", "MAX_WORKERS", "Launch", "Started", "default_workers", "process_launch",
           "run_workers", "start_delay_s"]

MAX_WORKERS = 256
# Enough for N interpreters to import the bench on a busy host; a worker not ready by the
# start time is named (merge.LATE_START_MS), never waited for.
START_DELAY_S = 3.0
START_DELAY_PER_WORKER_S = 0.5


def default_workers() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def start_delay_s(workers: int) -> float:
    return START_DELAY_S + START_DELAY_PER_WORKER_S * workers


class Started(Protocol):
    """A worker that was started: where it runs, whether it ended (and how), its result."""

    @property
    def where(self) -> str: ...

    def ended(self) -> str | None: ...

    def stop(self) -> None: ...

    def result(self) -> WorkerResult | None: ...


# (job, its file, the shard, the run's work folder) -> the started worker
Launch = Callable[[Job, Path, int, Path], Started]


@dataclass
class _Process:
    proc: subprocess.Popen[bytes]
    out: Path

    @property
    def where(self) -> str:
        return f"pid {self.proc.pid}"

    def ended(self) -> str | None:
        code = self.proc.poll()
        if code is None:
            return None
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit {code}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def result(self) -> WorkerResult | None:
        return read_result(self.out.read_bytes()) if self.out.exists() else None


def process_launch(job: Job, job_path: Path, shard: int, work: Path) -> Started:
    """A local process, its result in a file of the run's work folder."""
    out = work / f"worker-{shard}.json"
    argv = [sys.executable, *worker_argv(shard, job.shards, job.start_at, str(job_path), str(out))]
    log = (work / f"worker-{shard}.log").open("wb")
    with log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    return _Process(proc, out)


def _docker_launch(job: Job, job_path: Path, shard: int, work: Path) -> Started:
    from trade_ops.bench.docker_workers import container_launch

    return container_launch(job, job_path, shard, work)


def _docker_image() -> None:
    from trade_ops.bench.docker_workers import prepare_image

    prepare_image()


LAUNCHERS: dict[str, Launch] = {"process": process_launch, "docker": _docker_launch}
# what a launcher needs done once, before the start time is set (the image built)
PREPARE: dict[str, Callable[[], None]] = {"docker": _docker_image}


def _runs_dir(req: BenchRequest) -> Path:

    return req.runs_dir or req.ctx.run_dir.runs


def _slots(started: list[Started], deadline: float) -> list[WorkerSlot]:
    """Wait for every worker to end (until the deadline: those still running are stopped)."""
    while time.time() < deadline and any(s.ended() is None for s in started):
        time.sleep(0.05)
    out = []
    for shard, s in enumerate(started):
        ended = s.ended()
        if ended is None:
            s.stop()
            ended = "stopped at the deadline"
        out.append(WorkerSlot(shard, s.where, ended, s.result()))
    return out


def _worker_rows(slots: list[WorkerSlot]) -> list[WorkerRow]:
    rows = []
    for s in slots:
        d, r = s.doc, s.doc.results if s.doc else None
        rows.append(WorkerRow(shard=s.shard, where=s.where, ended=s.exit, status=d.status if d else "missing",
                              error=d.error if d else None, host=d.host.name if d else None,
                              requests=r.requests if r else None, late_ms=d.late_ms if d else None,
                              cpu_s=d.cpu_s if d else None,
                              schedule_lag_p99_ms=r.schedule_lag_ms.p99 if r else None))
    return rows


def run_workers(req: BenchRequest, workers: int, runtime: str, console: Console,
                launch: Launch | None = None) -> BenchOutcome:
    """The run on `workers` workers started by `runtime` (or by `launch`, given)."""
    check_target(req.target)
    if req.target not in WORKER_TARGETS:
        raise UsageError(f"--workers sends HTTP requests: target {req.target!r} is not one of "
                         f"{', '.join(WORKER_TARGETS)}")
    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}, not {workers}")
    if launch is None and runtime not in (*LAUNCHERS, "nats"):
        raise UsageError(f"--runtime {runtime!r} for workers: one of {', '.join(LAUNCHERS)}, nats")
    if runtime == "nats" and req.target == "null" and not req.url:
        raise UsageError("workers elsewhere cannot reach this host's own null endpoint: give its --url")
    if req.repeat > 1:
        raise UsageError("--repeat and --workers do not go together")
    sc = resolve(req.scenario or default_scenario(req.target), req.overrides)
    d = sc.definition
    if d.get("find_max"):
        raise UsageError("--find-max and --workers do not go together")
    slos = with_default_gates(parse_slos(list(d.get("slo", []))))
    spec = load_spec(d)
    spec.check()
    if spec.model != "open":
        raise UsageError("--workers splits an open-loop schedule: give --rate (a closed loop has none)")
    if req.save and not req.force:
        refuse_existing(req.save, _runs_dir(req))
    with contextlib.ExitStack() as stack:
        own_null = req.target == "null" and not req.url
        base = stack.enter_context(NullServer()) if own_null else _base_url(req)
        job = Job(uuid.uuid4().hex[:8], req.target, base, d, workers, 0.0, req.method, req.body, req.headers,
                  req.allow_remote, operator=not req.url and req.target not in ("http", "null"),
                  foreign=bool(req.url), run_dir=str(req.ctx.run_dir.path), contract=contract_table(req))
        target = job_target(job)  # bad headers, URL or order: exit 2 here, before any worker starts
        from trade_ops.bench.client import probe

        probe(target.host, target.port)
        cpu = None if req.url or own_null else CpuMeter.for_run_dir(req.ctx.run_dir)
        if cpu:
            cpu.procs.pop(GENERATOR, None)  # this process only waits: the workers generate the load
            cpu.measure_idle()
        before = host_conditions()
        started: list[Started] = []
        try:
            if runtime == "nats" and launch is None:
                started.extend(_join(req, job, stack, console))
            else:
                work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="trade-ops-bench-")))
                started.extend(_launch(job, work, launch or LAUNCHERS[runtime], console, runtime))
            if cpu:
                cpu.start()
            drain = max(2 * spec.timeout_s, 5.0)
            slots = _slots(started, job.start_at + spec.expected_s() + drain + 30.0)
        finally:
            for s in started:
                s.stop()
    return _outcome(req, sc, slots, spec, slos, cpu, before, target, runtime)


def _launch(job: Job, work: Path, launch: Launch, console: Console, runtime: str) -> list[Started]:
    """Start the N workers here (processes, containers), all told the same start time."""
    PREPARE.get(runtime, lambda: None)()
    job.start_at = time.time() + start_delay_s(job.shards)
    job_path = work / "job.json"
    job_path.write_bytes(orjson.dumps(job.to_json()))
    job_path.chmod(0o600)  # it may hold header values
    console.print(f"[dim]{job.shards} worker(s) ({runtime}), start in {job.start_at - time.time():.1f} s[/]")
    return [launch(job, job_path, shard, work) for shard in range(job.shards)]


def _join(req: BenchRequest, job: Job, stack: contextlib.ExitStack, console: Console) -> list[Started]:
    """Wait for N workers elsewhere to join through the stack's NATS; then one start time."""
    from trade_ops.bench.join import NatsFleet, bench_login

    url = req.ctx.stack.nats_url()
    console.print(f"[dim]waiting for {job.shards} worker(s) to join through {url} "
                  f"(trade-ops bench worker --shard i/{job.shards} --join {url})[/]")
    fleet = NatsFleet(url, bench_login(req.ctx.run_dir.path))
    stack.callback(fleet.close)
    return list(fleet.start(job))


def _outcome(req: BenchRequest, sc: Scenario, slots: list[WorkerSlot], spec: LoadSpec, slos: list[Slo],
             cpu: CpuMeter | None, before: HostLoad, target: Target, runtime: str) -> BenchOutcome:
    d, workers = sc.definition, len(slots)
    done = [s.doc for s in slots if s.doc is not None and s.doc.status == "done"]
    analysis: Analysis = merge_workers(done, float(spec.rate or 0.0))
    r = analysis.result
    problems = worker_problems(slots, slos, d.get("max_lag_ms"))
    if problems:
        r.valid, r.invalid_reason = False, "; ".join(problems)
    sent = r.requests + r.warmup_requests
    r.cpu = cpu.stop(sent) if cpu else None
    if r.cpu is not None and sent:  # the generators' CPU, as each worker measured its own
        r.cpu.generator_ms_per_request = round(
            1000 * sum(s.doc.cpu_s for s in slots if s.doc) / sent, 4)
    r.conditions = conditions_between(before, host_conditions())
    r.workers = _worker_rows(slots)
    judge(r, slos, d.get("max_lag_ms"))
    r.target, r.url, r.scenario, r.scenario_hash, r.repeat = req.target, target.url, sc.name, sc.hash, 1
    saved = None
    if req.save:
        settings = msgspec.structs.replace(_settings(target, spec, d, 1), workers=workers, runtime=runtime)
        run = build_run(req.save, sc.to_json(), settings, None, r, analysis,
                        command=bench_command(req) + f" --workers {workers} --runtime {runtime}")
        if env := secret_header_vars(req):
            run.meta.command_env = env
        saved = save_run(run, analysis, _runs_dir(req))
        r.saved = str(saved[0])
    return BenchOutcome(r, analysis, ExitCode(r.exit_code), saved)

