"""Runtimes: what runs the stack's components. `up` picks one; the others follow the run directory.

    process   OS processes from pip wheels (trade_ops/runtime/process.py over supervisor.py), the default
    docker    containers on a Docker engine, through the SDK (trade_ops/runtime/docker.py)

Both satisfy `Runtime`; state.json records which one started a stack, so `ps`, `logs`,
`restart`, `down` and `chaos` reach it without being told, and doctor and bench find its
ports as always. A fault of `trade-ops chaos` is a runtime's kill, pause, resume and
revive: a signal to a process, or the same through the Docker engine to a container.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from services import env
from trade_ops.errors import UsageError

if TYPE_CHECKING:
    from trade_ops.logfiles import Line
    from trade_ops.rundir import RunDir
    from trade_ops.stack import Stack
    from trade_ops.supervisor import ProcessStatus

__all__ = ["RUNTIMES", "RUNTIME_ENV", "Runtime", "claim", "get", "of", "recorded", "resolve"]

RUNTIMES = ("process", "docker")
RUNTIME_ENV = env.RUNTIME


class Runtime(Protocol):
    name: str

    def up(self, run_dir: RunDir, stack: Stack, *, only: list[str] | None = ..., timeout: float = ...,
           on_progress: Callable[[ProcessStatus], None] | None = ...) -> list[ProcessStatus]: ...

    def status(self, run_dir: RunDir) -> list[ProcessStatus]: ...

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
    a dead one's state is cleared, so the new stack starts afresh."""
    if not run_dir.has_state():
        return
    recorded = run_dir.load_state().runtime
    if recorded == name:
        return
    if any(st.alive for st in of(run_dir).status(run_dir)):
        raise UsageError(f"a stack runs from {run_dir.path} under the {recorded} runtime",
                         detail=f"stop it first: trade-ops down --run-dir {run_dir.path}")
    run_dir.clear_state()
