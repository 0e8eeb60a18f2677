"""The run directory: where a running stack keeps its state, logs, NATS data and lake.

Found the way git finds its repository: `--run-dir`, else TRADE_OPS_RUN_DIR, else the
nearest `.trade-ops/` in the current directory or one of its parents, else (for `up`
to create) `./.trade-ops`. `ps`, `logs`, `down`, `doctor` and `bench` find the running
stack (its ports and offset included) from `state.json` there.

    state.json   {"offset", "stack_file", "started_at", "processes": {name: {...}}, "runtime"}
    logs/NAME.log  one per process start, opened by a line with its pid (process runtime)
    nats/        JetStream file store
    lake/        Delta tables (unless the stack points the lake elsewhere)
    reports/     STATUS_REPORT.md, PERFORMANCE_REPORT.md and its plots, unless a path is given
    runs/        saved bench runs (`bench --save NAME`: NAME.json, NAME.hgrm), found by name

Reports and runs live here, never relative to the current directory: `cd services/oms &&
trade-ops doctor` finds the run directory above and writes its report there, and no default
overwrites a file the project tracks (the run directory is ignored by git).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from services import env
from trade_ops.errors import RunDirError
from trade_ops.stack import Stack, load_stack

__all__ = ["RUN_DIR_ENV", "STACK_ENV", "ProcessRecord", "RunDir", "StackState", "find_run_dir"]

RUN_DIR_ENV = env.RUN_DIR
STACK_ENV = env.STACK
DEFAULT_RUN_DIR = ".trade-ops"


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
        data: dict[str, Any] = orjson.loads(raw)
        procs = {n: ProcessRecord(**p) for n, p in data.get("processes", {}).items()}
        return cls(offset=int(data.get("offset", 0)), stack_file=data.get("stack_file"),
                   started_at=float(data.get("started_at", 0.0)), processes=procs,
                   runtime=str(data.get("runtime", "process")))


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
        return self.path / "state.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def nats_store(self) -> Path:
        return self.path / "nats"

    @property
    def reports(self) -> Path:
        """Where reports are written when no path is given."""
        return self.path / "reports"

    @property
    def runs(self) -> Path:
        """Where `bench --save NAME` keeps a run and `report perf NAME` finds it."""
        return self.path / "runs"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

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

    def running(self) -> list[str]:
        """The names of the recorded processes still alive (none without a state)."""
        from trade_ops import processes

        if not self.has_state():
            return []
        state = self.load_state()
        if state.runtime != "process":  # containers: ask their runtime
            from trade_ops import runtime

            return [st.name for st in runtime.of(self).status(self) if st.alive]
        return [n for n, r in state.processes.items() if processes.find_ours(r.pid, r.started_at)]

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

    def require_running(self) -> None:
        """Raise `no_stack_error()` unless a process of the stack is alive."""
        if not self.running():
            raise self.no_stack_error()

    def load_state(self) -> StackState:
        try:
            return StackState.from_json(self.state_file.read_bytes())
        except FileNotFoundError:
            raise RunDirError(f"no stack is running from {self.path} (no state.json)",
                              detail="start one with `trade-ops up`") from None
        except (OSError, ValueError, TypeError) as exc:
            raise RunDirError(f"state file {self.state_file} is unreadable: {exc}") from None

    def save_state(self, state: StackState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(state.to_json())
        tmp.replace(self.state_file)  # atomic: readers never see half a file

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
