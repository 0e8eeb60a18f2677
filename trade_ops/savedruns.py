"""Saved bench runs on disk: `RUN_DIR/runs/NAME.json` in format trade-ops-run/1, typed
here (SavedRun, BenchResult, Interval: the one definition of each) and written by
trade_ops/bench/runs.py, their one writer. This is their one reader: by name or path,
with the errors a user can act on, and the newest run against a stack (for doctor).

    SavedRun
      format, name, created_at          "trade-ops-run/1"; created_at ISO-8601
      meta                              git revision, packages, host, the command that re-makes it
      scenario, settings, calibration   what was run, and how (calibration: the generator's overhead)
      results: BenchResult              the figures and the verdict: what `bench --json` prints
      histograms                        {"latency", "service_time", "schedule_lag"}: HdrHistogram V2, us
      intervals: [Interval[str]]        per interval, its histograms encoded the same way
      repeats: [Repeat]                 with --repeat N > 1: each run's own results and intervals

A run saved before a field existed reads with that field's default: the format keeps its
name while fields are only added.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import msgspec

from trade_ops.errors import UsageError

__all__ = ["FORMAT", "BenchResult", "Calibration", "Conditions", "CpuUse", "FindMax", "Host", "HostLoad",
           "Interval", "Latency", "Repeat", "RunMeta", "RunSettings", "SavedRun", "SloResult", "Step",
           "Warmup", "WorkerRow", "check_name", "encode_run", "latest_run", "read_run", "run_path"]

FORMAT = "trade-ops-run/1"
H = TypeVar("H")  # how an interval holds its histograms: encoded (str), live, or decoded


class SloResult(msgspec.Struct, kw_only=True):
    """One SLO gate of a bench run: its expression, met or not, the figure observed."""
    expr: str
    passed: bool
    observed: str


class Latency(msgspec.Struct, kw_only=True, frozen=True):
    """A histogram's summary in milliseconds."""
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    p999: float = 0.0
    max: float = 0.0
    mean: float = 0.0


class Interval(msgspec.Struct, Generic[H], kw_only=True):
    """One interval of a run (1 s by default), by the intended start of its requests."""
    start_s: float
    end_s: float
    count: int = 0  # requests due in it
    completed: int | None = None  # answers that came back in it (runs saved before: not recorded)
    errors: int = 0
    partial: bool | None = None  # the schedule does not cover all of it (runs saved before: not marked)
    latency: H
    service_time: H | None = None

    @property
    def mid_s(self) -> float:
        return (self.start_s + self.end_s) / 2

    @property
    def rate(self) -> float:
        """What the target delivered in it: answers back (else requests asked for) per second."""
        span = self.end_s - self.start_s
        delivered = self.completed if self.completed is not None else self.count
        return delivered / span if span > 0 else 0.0


class Host(msgspec.Struct, kw_only=True):
    """The machine a run was measured on (name and pid: a bench worker's)."""
    cpu: str = "?"
    cores: int = 1
    platform: str = "?"
    python: str = "?"
    loadavg: list[float] | None = None
    name: str | None = None
    pid: int | None = None


class RunMeta(msgspec.Struct, kw_only=True):
    """What a saved run was made with, and how to make it again."""
    git_revision: str | None = None
    git_dirty: bool | None = None
    packages: dict[str, str] = {}
    host: Host = msgspec.field(default_factory=Host)
    command: str | list[str] | None = None  # the bench command that makes the run again (early runs: argv)
    command_env: dict[str, str] = {}  # the variables it reads secrets from, and what each holds


class Warmup(msgspec.Struct, kw_only=True):
    """What ran before the measurement and was left out of it."""
    requests: int = 0
    seconds: float = 0.0


class RunSettings(msgspec.Struct, kw_only=True):
    """How a run was made: the target and the load (what `report perf` holds two runs to)."""
    target: str = ""
    url: str = ""
    model: str = "open"  # open | closed
    rate: float | None = None  # requests/s asked (open loop)
    duration_s: float | None = None
    concurrency: int | None = None
    requests: int | None = None
    warmup: Warmup | float | None = None  # (early synthetic runs: seconds)
    timeout_s: float | None = None
    max_lag_ms: float | None = None
    interval_s: float = 1.0
    find_max: bool = False
    repeat: int | None = None
    request: dict[str, Any] = {}  # what each request is: method, path, body, the order contract
    workers: int | None = None  # --workers N, and the runtime that ran them
    runtime: str | None = None


class HostLoad(msgspec.Struct, kw_only=True):
    """The host's load at one moment: its load average and cumulative CPU ticks (steal among them)."""
    loadavg: list[float] | None = None  # 1, 5, 15 minutes
    cpu_ticks: int | None = None
    steal_ticks: int | None = None


class Conditions(msgspec.Struct, kw_only=True):
    """The host's load before and after a run, and the share of CPU time stolen between them."""
    before: HostLoad
    after: HostLoad
    steal_pct: float | None = None


class CpuUse(msgspec.Struct, kw_only=True):
    """CPU ms per request, by process (bench/cpu.py): each part gross minus its idle rate, the
    stack's total their sum; the load generator shown apart, not counted."""
    requests: int
    ms_per_request: dict[str, float]  # the stack's processes, biggest first
    stack_ms_per_request: float
    cores: int
    bound_rate: float | None  # requests/s if CPU were the only limit, on all the cores
    generator_ms_per_request: float | None = None
    gross_ms_per_request: dict[str, float] = {}
    idle_ms_per_request: dict[str, float] = {}
    idle_subtracted: bool = False
    settle_s: float | None = None  # how long after the load it was counted
    settled: bool = False  # ... until the stack was idle again
    others_cores: float | None = None  # the cores other processes of the host used meanwhile
    bound_rate_free: float | None = None  # the bound on the cores they left free
    bound_assumes: str = ""


class Step(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One rate find-max measured: whether it met the SLOs there, and its figures."""
    rate: float
    passed: bool
    valid: bool  # False: the generator could not keep the schedule (not the target's limit)
    rate_achieved: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    lag_p99_ms: float | None = None
    errors: int | None = None
    failures: list[str] | None = None
    invalid_reason: str | None = None


class FindMax(msgspec.Struct, kw_only=True):
    """The highest rate that met the SLOs with a valid measurement, and what stopped the search."""
    max_rate: float | None = None
    limited_by: str = ""  # slo | generator | limit | steps | interrupted
    steps: list[Step] = []


class WorkerRow(msgspec.Struct, kw_only=True):
    """One worker of a `bench --workers N` run, as the coordinator saw it."""
    shard: int
    where: str  # "pid 4711", "container trade-ops-bench-1a2b-0", "10.0.0.2 (host-b)"
    ended: str | None  # how it ended when that is known: "exit 0", "killed by SIGKILL"
    status: str  # done | failed | missing (it wrote no result)
    error: str | None = None
    host: str | None = None
    requests: int | None = None
    late_ms: float | None = None  # how long after the start time its schedule began
    cpu_s: float | None = None
    schedule_lag_p99_ms: float | None = None


class Calibration(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The load generator's own cost on this host, against the null endpoint (bench/calibrate.py).
    A saved run keeps the three figures; the run directory's cache keeps all of it."""
    overhead_p50_ms: float
    overhead_p99_ms: float
    max_rate: float | None  # the highest open-loop rate it keeps its schedule at (None: not searched)
    overhead_requests: int | None = None
    max_rate_search: FindMax | None = None
    measured_at: float | None = None  # Unix time
    host: Host | None = None

    def saved(self) -> Calibration:
        return Calibration(overhead_p50_ms=self.overhead_p50_ms, overhead_p99_ms=self.overhead_p99_ms,
                           max_rate=self.max_rate)


class BenchResult(msgspec.Struct, kw_only=True):
    """What a bench run measured and its verdict: `bench --json`, a saved run's `results`."""
    model: str = "open"  # open | closed
    requests: int = 0  # measured (warm-up excluded)
    ok: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = {}
    error_samples: dict[str, list[str]] = {}  # the first error bodies of each kind
    rejection_samples: list[str] = []
    interrupted: bool = False
    generator_nice: int | None = None
    generator_realtime: bool = False
    rejections: int = 0
    rate: float = 0.0  # achieved, requests per second
    target_rate: float | None = None  # asked (open loop)
    delivered_rate: float | None = None  # answers per second, first answer to last
    duration_s: float = 0.0
    warmup_requests: int = 0
    connections: int = 0
    valid: bool = True
    invalid_reason: str | None = None
    latency_ms: Latency = Latency()  # from each request's intended start (corrected) when open loop
    latency_without_lag_ms: Latency = Latency()
    latency_without_lag_noise_ms: dict[str, float] = {}  # p50, p90, p99: their sampling noise's upper end
    service_time_ms: Latency = Latency()
    schedule_lag_ms: Latency = Latency()
    corrected: bool = False
    overload: str | None = None  # why the run is flagged overloaded
    overloaded: bool = False
    cpu: CpuUse | None = None
    conditions: Conditions | None = None
    # the verdict (bench/verdict.py)
    slo: list[SloResult] = []
    failures: list[str] = []
    passed: bool | None = None  # None: not judged (a worker's own figures)
    status: str = ""  # pass | fail | invalid | interrupted
    exit_code: int = 0
    # what was run
    target: str = ""
    url: str = ""
    scenario: str = ""
    scenario_hash: str = ""
    repeat: int = 1
    contract: Any = None  # the order contract the orders followed (a foreign OMS's)
    find_max: FindMax | None = None  # --find-max
    workers: list[WorkerRow] | None = None  # --workers N
    saved: str | None = None  # where the run was saved

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        return doc


class Repeat(msgspec.Struct, kw_only=True):
    results: BenchResult
    intervals: list[Interval[str]] = []


class SavedRun(msgspec.Struct, kw_only=True):
    format: str
    name: str
    created_at: str
    meta: RunMeta = msgspec.field(default_factory=RunMeta)
    repeats: list[Repeat] = []
    scenario: dict[str, Any] = {}
    settings: RunSettings = msgspec.field(default_factory=RunSettings)
    calibration: Calibration | None = None
    results: BenchResult
    histograms: dict[str, str]
    intervals: list[Interval[str]] = []


def encode_run(run: SavedRun) -> bytes:
    """The run as its file holds it (indented: a saved run is read by people too)."""
    import orjson

    return orjson.dumps(msgspec.to_builtins(run), option=orjson.OPT_INDENT_2)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"run name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def run_path(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """A path as given if it is a file, else `runs_dir/REF.json` (REF being a saved run's name;
    the run directory's runs/, RunDir.runs, where bench saves them)."""
    path = Path(ref)
    if path.is_file():
        return path
    if runs_dir is None:
        raise UsageError(f"no saved run at {path}")
    named = runs_dir / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if named.is_file():
        return named
    known = sorted(p.stem for p in runs_dir.glob("*.json")) if runs_dir.is_dir() else []
    hint = f"saved runs in {runs_dir}: {', '.join(known)}" if known else f"no saved runs in {runs_dir}"
    raise UsageError(f"no run named or at {str(ref)!r}",
                     detail=f"{hint}\nsave one with `trade-ops bench oms --save NAME`")


def _decode(data: bytes) -> SavedRun:
    run = msgspec.json.decode(data, type=SavedRun)
    if run.format != FORMAT:
        raise msgspec.ValidationError(f"format {run.format!r}, not {FORMAT}")
    return run


def read_run(ref: str | Path, runs_dir: Path | None = None) -> tuple[Path, SavedRun]:
    """The saved run named `ref` (or at that path): where it is and the run."""
    path = run_path(ref, runs_dir)
    try:
        return path, _decode(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"saved run {path} is unreadable: {exc.strerror or exc}") from None
    except msgspec.ValidationError as exc:  # JSON, of another shape (a DecodeError too: first)
        raise UsageError(f"{path} is not a {FORMAT} document: {exc}") from None
    except msgspec.DecodeError as exc:
        raise UsageError(f"saved run {path} is not valid JSON: {exc}") from None


def latest_run(base_urls: set[str], runs_dir: Path) -> tuple[Path, SavedRun] | None:
    """The newest saved run by its own `created_at` (never a file's mtime: a checkout sets
    that) whose target is one of these base URLs (this stack's services); None if none is."""
    bases = {u.rstrip("/") for u in base_urls}
    found: list[tuple[datetime, Path, SavedRun]] = []
    for path in runs_dir.glob("*.json") if runs_dir.is_dir() else []:
        try:
            run = _decode(path.read_bytes())
            created = datetime.fromisoformat(run.created_at)
            url = run.settings.url
        except (OSError, msgspec.DecodeError, KeyError, ValueError):
            continue
        if any(url == b or url.startswith(b + "/") for b in bases):
            found.append((created if created.tzinfo else created.replace(tzinfo=UTC), path, run))
    if not found:
        return None
    _, path, run = max(found, key=lambda item: item[0])
    return path, run
