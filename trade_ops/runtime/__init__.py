"""Runtimes: what runs the stack's components. `up` picks one; the others follow the run directory.

    process   OS processes from pip wheels (trade_ops/runtime/process.py over runtime/supervisor.py),
              the default
    docker    containers on a Docker engine, through the SDK (trade_ops/runtime/docker.py)

Both satisfy `Runtime`; state.json records which one started a stack, so `ps`, `logs`,
`restart`, `down` and `chaos` reach it without being told, and doctor and bench find its
ports as always. A fault of `trade-ops chaos` is a runtime's kill, pause, resume and
revive: a signal to a process, or the same through the Docker engine to a container.
Nothing outside this package asks which runtime it has: what differs is a method here
(`alive`, `processes` for CPU, `containers` for the Docker engine's view).

`choose` picks the runtime for a start the same way for every command (the flag, else
TRADE_OPS_RUNTIME, else the one recorded in the run directory, else process); `start_stack`
is the start itself, for `up` and `doctor --up` alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from services import env
from trade_ops.errors import UsageError

if TYPE_CHECKING:
    import psutil

    from trade_ops.logfiles import Line
    from trade_ops.plan import ProcessStatus
    from trade_ops.rundir import RunDir
    from trade_ops.stack import Stack

__all__ = ["RUNTIMES", "RUNTIME_ENV", "Runtime", "choose", "claim", "get", "of", "recorded",
           "require_running", "resolve", "running"]

RUNTIMES = ("process", "docker")
RUNTIME_ENV = env.RUNTIME


class Runtime(Protocol):
    name: str

    def up(self, run_dir: RunDir, stack: Stack, *, only: list[str] | None = ..., timeout: float = ...,
           on_progress: Callable[[ProcessStatus], None] | None = ...) -> list[ProcessStatus]: ...

    def status(self, run_dir: RunDir) -> list[ProcessStatus]: ...

    def alive(self, run_dir: RunDir) -> list[str]:
        """The names of the stack's components still running (no readiness probe: quick)."""

    def processes(self, run_dir: RunDir) -> dict[str, psutil.Process]:
        """Each running component's main process as seen from this host (for its CPU time)."""

    def containers(self, run_dir: RunDir) -> str | None:
        """The Docker label filter that selects the stack's containers; None when it runs none."""

    def down(self, run_dir: RunDir, *, grace: float = ...) -> list[ProcessStatus]: ...

    def restart(self, run_dir: RunDir, names: list[str] | None = ..., *, grace: float = ...,
                timeout: float = ...) -> list[ProcessStatus]: ...

    def log_lines(self, run_dir: RunDir, names: list[str] | None = ..., since: float | None = ...,
                  lines: int | None = ...) -> list[Line]:
        """The named components' log lines (all by default), interleaved by time: from `since`,
        the last `lines` of them."""

    def follow_lines(self, run_dir: RunDir, names: list[str] | None = ...) -> Iterator[Line]:
        """Their new lines as they are written; runs until closed."""

    # faults, for `trade-ops chaos`
    def kill(self, run_dir: RunDir, name: str) -> None:
        """SIGKILL the component; it stays down (no restart policy brings it back) until `revive`."""

    def pause(self, run_dir: RunDir, name: str) -> None:
        """Freeze it (SIGSTOP; a container's every process) until `resume`."""

    def resume(self, run_dir: RunDir, name: str) -> None: ...

    def revive(self, run_dir: RunDir, stack: Stack, name: str, timeout: float = ...) -> None:
        """Start a killed component again, wait until ready; a StartupError when it is not."""


def resolve(name: str | None = None) -> str:
    """`name`, else TRADE_OPS_RUNTIME, else process; a UsageError for an unknown one."""
    chosen = (name or os.environ.get(RUNTIME_ENV) or "process").strip().lower()
    if chosen not in RUNTIMES:
        raise UsageError(f"unknown runtime {chosen!r}; known: {', '.join(RUNTIMES)}")
    return chosen


def get(name: str | None = None, *, base_image: str | None = None, offline_images: bool = False,
        say: Callable[[str], None] | None = None) -> Runtime:
    """The runtime called `name` (see `resolve`); the other arguments are the Docker runtime's."""
    if resolve(name) == "docker":
        from trade_ops.runtime.docker import DockerRuntime

        return DockerRuntime(base_image, offline_images, say)
    from trade_ops.runtime.process import ProcessRuntime

    return ProcessRuntime()


def recorded(run_dir: RunDir) -> str | None:
    """The runtime that started the stack in `run_dir`, when one did."""
    return run_dir.load_state().runtime if run_dir.has_state() else None


def of(run_dir: RunDir) -> Runtime:
    """The runtime that started the stack in `run_dir` (process when none is recorded)."""
    return get(recorded(run_dir) or "process")


def claim(run_dir: RunDir, name: str) -> None:
    """Before `up` with runtime `name`: a live stack of another runtime here is a usage error;
    a dead one's state is cleared, so the new stack starts afresh. The state is read and
    cleared under the run directory's lock: an `up` holding it may be writing a new one."""
    if not run_dir.has_state() or run_dir.load_state().runtime == name:
        return
    with run_dir.lock():
        if not run_dir.has_state():
            return
        recorded = run_dir.load_state().runtime
        if recorded == name:
            return
        if any(st.alive for st in of(run_dir).status(run_dir)):
            raise UsageError(f"a stack runs from {run_dir.path} under the {recorded} runtime",
                             detail=f"stop it first: trade-ops down --run-dir {run_dir.path}")
        run_dir.clear_state()


def running(run_dir: RunDir) -> list[str]:
    """The names of the components still alive in the stack of `run_dir` (none without a state)."""
    return of(run_dir).alive(run_dir) if run_dir.has_state() else []


def require_running(run_dir: RunDir) -> None:
    """Raise the run directory's `no_stack_error()` unless a component of its stack is alive."""
    if not running(run_dir):
        raise run_dir.no_stack_error()


def choose(run_dir: RunDir, name: str | None = None, *, base_image: str | None = None,
           offline_images: bool = False, say: Callable[[str], None] | None = None) -> Runtime:
    """The runtime a start uses: `name` (a flag), else TRADE_OPS_RUNTIME, else the one recorded
    in `run_dir`, else process. A live stack of another runtime there is a usage error (claim)."""
    chosen = resolve(name or os.environ.get(RUNTIME_ENV) or recorded(run_dir))
    claim(run_dir, chosen)
    return get(chosen, base_image=base_image, offline_images=offline_images, say=say)

