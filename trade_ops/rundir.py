"""The run directory: where a running stack keeps its state, logs, NATS data and lake.

Found the way git finds its repository: `--run-dir`, else TRADE_OPS_RUN_DIR, else the
nearest `.trade-ops/` in the current directory or one of its parents, else (for `up`
to create) `./.trade-ops`. `ps`, `logs`, `down`, `doctor` and `bench` find the running
stack (its ports and offset included) from `state.json` there.

The whole layout is here, and only here (every other module asks a `RunDir` for a path):

    state.json                {"offset", "stack_file", "started_at", "processes": {name: {...}},
                              "runtime"}, written whole (a temporary file renamed over it); one
                              that is truncated or corrupt anyway is read for what it still
                              says (`salvage`)
    up.lock                   held (flock) by the command changing the stack: a second `up` refuses
    durability                what `up --durability` chose; restarts keep it
    docker.json               the Docker runtime's image options for this stack
    logs/NAME.log             one per process start, opened by a line with its pid (process runtime)
    nats/                     JetStream file store
    valkey/                   valkey's append-only file
    lake/                     Delta tables (unless the stack points the lake elsewhere)
    secrets/                  the stack's credentials (trade_ops/credentials.py), 0700
    doctor-last.json          the last doctor document (for `report status`)
    bench-calibration.json    the load generator's measured overhead on this host
    chaos/                    chaos reports
    stream-bytes-scale        the share of each stream's max_bytes the first `up` sized to the disk
    reports/                  STATUS_REPORT.md, PERFORMANCE_REPORT.md and its plots, unless a
                              path is given
    kubernetes/               `render kubernetes` manifests (unless --out names a folder)
    runs/                     saved bench runs (`bench --save NAME`: NAME.json, NAME.hgrm), found
                              by name

Reports and runs live here, never relative to the current directory: `cd services/oms &&
trade-ops doctor` finds the run directory above and writes its report there, and no default
overwrites a file the project tracks (the run directory is ignored by git). What runs from it
is the runtime's to say (trade_ops/runtime: `running`, `require_running`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from services import env
from trade_ops import infra
from trade_ops.errors import RunDirError, UsageError
from trade_ops.stack import LAKE_DIR, Stack, load_stack

__all__ = ["CALIBRATION", "RUN_DIR_ENV", "SECRETS", "STACK_ENV", "ProcessRecord", "RunDir",
           "StackState", "find_run_dir"]

RUN_DIR_ENV = env.RUN_DIR
STACK_ENV = env.STACK
DEFAULT_RUN_DIR = ".trade-ops"
MAX_STATE_BYTES = 4 << 20
# The entries, by name: modules handed a bare path (credentials.py, stack.py) join these.
STATE_FILE = "state.json"
LOCK_FILE = "up.lock"
DURABILITY_FILE = "durability"
DOCKER_OPTIONS = "docker.json"
LOGS = "logs"
NATS_STORE = "nats"
VALKEY_DATA = "valkey"
SECRETS = "secrets"
DOCTOR_LAST = "doctor-last.json"
CALIBRATION = "bench-calibration.json"
CHAOS = "chaos"
REPORTS = "reports"
RUNS = "runs"


@dataclass
class ProcessRecord:
    name: str
    pid: int
    port: int | None
    command: list[str]
    log: str
    started_at: float
    restarts: int = 0
    kind: str = "service"
    ready_s: float | None = None  # seconds from start to ready, once it was


@dataclass
class StackState:
    offset: int = 0
    stack_file: str | None = None
    started_at: float = 0.0
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    runtime: str = "process"  # which runtime started the stack (trade_ops/runtime)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> StackState:
        data = orjson.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("processes", {}), dict):
            raise ValueError("not a state document")
        procs = {r.name: r for r in map(_record, data.get("processes", {}).values()) if r is not None}
        return cls(offset=int(data.get("offset", 0)), stack_file=data.get("stack_file"),
                   started_at=float(data.get("started_at", 0.0)), processes=procs,
                   runtime=str(data.get("runtime", "process")))

    @classmethod
    def salvage(cls, raw: bytes) -> StackState:
        """What a truncated or corrupt state file still says: each process record that is
        whole (a record holds no braces: it is an innermost JSON object), the offset and the
        runtime. What cannot be read is left out; `down` finds the rest by the stack's ports."""
        text = raw.decode("utf-8", "replace")
        procs: dict[str, ProcessRecord] = {}
        for match in re.finditer(r"\{[^{}]*\}", text):
            with contextlib.suppress(orjson.JSONDecodeError):
                if (rec := _record(orjson.loads(match.group()))) is not None:
                    procs[rec.name] = rec
        offset = re.search(r'"offset":\s*(-?\d+)', text)
        runtime = re.search(r'"runtime":\s*"(\w+)"', text)
        stack_file = re.search(r'"stack_file":\s*("(?:[^"\\]|\\.)*")', text)
        return cls(offset=int(offset.group(1)) if offset else 0,
                   stack_file=orjson.loads(stack_file.group(1)) if stack_file else None,
                   processes=procs, runtime=runtime.group(1) if runtime else "process")


_RECORD_TYPES = {f.name: f.type for f in fields(ProcessRecord)}


def _record(doc: Any) -> ProcessRecord | None:
    """A ProcessRecord from its JSON, or None when a field is missing or of the wrong type
    (a pid that is not a number must never reach a signal)."""
    if not isinstance(doc, dict) or set(doc) - set(_RECORD_TYPES):
        return None
    try:
        rec = ProcessRecord(**doc)
    except TypeError:
        return None
    ok = (isinstance(rec.name, str) and isinstance(rec.pid, int) and not isinstance(rec.pid, bool)
          and isinstance(rec.started_at, int | float) and isinstance(rec.log, str)
          and isinstance(rec.command, list) and all(isinstance(c, str) for c in rec.command)
          and (rec.port is None or isinstance(rec.port, int)))
    return rec if ok else None


# Locks this process holds, by run directory: (file descriptor, depth), so `restart`, which
# stops and then starts under one lock, takes it once.
_held: dict[Path, tuple[int, int]] = {}
_held_guard = threading.Lock()


def find_run_dir(start: Path | None = None) -> Path | None:
    """The nearest `.trade-ops/` directory in `start` (default: the cwd) or its parents."""
    here = (start or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_RUN_DIR
        if candidate.is_dir():
            return candidate
    return None


class RunDir:
    def __init__(self, path: Path | str | None = None) -> None:
        chosen = path or os.environ.get(RUN_DIR_ENV)
        self.searched = not chosen  # found by looking up from the cwd (for messages)
        if not chosen:
            chosen = find_run_dir() or DEFAULT_RUN_DIR
        self.path = Path(chosen).expanduser().absolute()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def logs(self) -> Path:
        return self.path / LOGS

    @property
    def nats_store(self) -> Path:
        return self.path / NATS_STORE

    @property
    def valkey_data(self) -> Path:
        return self.path / VALKEY_DATA

    @property
    def lake(self) -> Path:
        """Where the lake is when the stack does not point it elsewhere (Stack.lake_uri)."""
        return self.path / LAKE_DIR

    @property
    def secrets(self) -> Path:
        return self.path / SECRETS

    @property
    def durability_file(self) -> Path:
        return self.path / DURABILITY_FILE

    @property
    def docker_options(self) -> Path:
        return self.path / DOCKER_OPTIONS

    @property
    def doctor_last(self) -> Path:
        return self.path / DOCTOR_LAST

    @property
    def calibration(self) -> Path:
        return self.path / CALIBRATION

    @property
    def chaos(self) -> Path:
        return self.path / CHAOS

    @property
    def kubernetes(self) -> Path:
        """Where `render kubernetes` writes its manifests when no --out is given."""
        return self.path / "kubernetes"

    @property
    def stream_scale(self) -> Path:
        return self.path / infra.STREAM_SCALE_FILE

    @property
    def reports(self) -> Path:
        """Where reports are written when no path is given."""
        return self.path / REPORTS

    @property
    def runs(self) -> Path:
        """Where `bench --save NAME` keeps a run and `report perf NAME` finds it."""
        return self.path / RUNS

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def durability(self) -> str:
        """TRADE_OPS_DURABILITY, else what `up --durability` kept here, else the default."""
        chosen = os.environ.get(env.DURABILITY)
        if not chosen and self.durability_file.is_file():
            chosen = self.durability_file.read_text().strip()
        return infra.check_durability(chosen or infra.DEFAULT_DURABILITY)

    def keep_durability(self, chosen: str) -> None:
        """`up --durability X`: kept for this stack's later starts and restarts."""
        if chosen not in infra.DURABILITY:
            raise UsageError(f"--durability must be one of {', '.join(infra.DURABILITY)}, not {chosen!r}")
        self.path.mkdir(parents=True, exist_ok=True)
        self.durability_file.write_text(chosen)

    def ensure_writable(self) -> None:
        """Create the directory tree, or say clearly why it cannot be."""
        try:
            for d in (self.path, self.logs, self.nats_store):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise RunDirError(f"run directory {self.path} is not writable: {exc.strerror or exc}",
                              detail=f"choose another with --run-dir or {env.RUN_DIR}") from None

    def has_state(self) -> bool:
        return self.state_file.is_file()

    def no_stack_error(self) -> RunDirError:
        """What a command that needs a running stack says when it finds none."""
        if not self.searched:
            where = f"no stack is running from {self.path}"
        elif self.path.is_dir():
            where = f"no stack is running from {self.path} (the nearest .trade-ops/)"
        else:
            where = f"no running stack found: no .trade-ops/ in {Path.cwd()} or above"
        return RunDirError(where, detail="start one with `trade-ops up`, point at one with --run-dir "
                                         f"or {env.RUN_DIR}, or name what to examine with --url "
                                         "SVC=URL (doctor: also --compose FILE)")

    def load_state(self) -> StackState:
        """The state; a corrupt or truncated one is salvaged (a truncated state.json made
        every command, `down` included, exit 3 and left valkey running)."""
        try:
            with self.state_file.open("rb") as f:
                raw = f.read(MAX_STATE_BYTES)  # a few KB: what is past this is not ours
        except FileNotFoundError:
            raise RunDirError(f"no stack is running from {self.path} (no state.json)",
                              detail="start one with `trade-ops up`") from None
        except OSError as exc:
            raise RunDirError(f"state file {self.state_file} is unreadable: {exc.strerror or exc}") from None
        try:
            return StackState.from_json(raw)
        except (ValueError, TypeError):
            return StackState.salvage(raw)

    def save_state(self, state: StackState) -> None:
        """Written whole: a temporary file of its own, renamed over state.json (readers never
        see half a file; two writers never share a temporary file)."""
        fd, tmp = tempfile.mkstemp(prefix="state.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(state.to_json())
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory while changing its stack (up, down, restart); another
        process holding it is a RunDirError naming its pid. Re-entrant within a process."""
        with _held_guard:
            fd, depth = _held.get(self.path, (-1, 0))
            if depth == 0:
                self.path.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise RunDirError(f"another trade-ops command (pid {holder}) is starting or "
                                      f"stopping the stack in {self.path}",
                                      detail="wait for it to finish, then run this again") from None
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
            _held[self.path] = (fd, depth + 1)
        try:
            yield
        finally:
            with _held_guard:
                fd, depth = _held.pop(self.path)
                if depth > 1:
                    _held[self.path] = (fd, depth - 1)
                else:
                    os.close(fd)  # closing the descriptor releases the flock

    def clear_state(self) -> None:
        self.state_file.unlink(missing_ok=True)

    def stack(self, stack_file: Path | str | None = None) -> Stack:
        """The stack as it runs from here: its stack file and port offset from the state.

        With no state, the stack file given (or TRADE_OPS_STACK, or the builtin) at offset 0.
        """
        explicit = stack_file or os.environ.get(STACK_ENV)
        if self.has_state():
            state = self.load_state()
            return load_stack(explicit or state.stack_file, offset=state.offset)
        return load_stack(explicit, offset=0)
