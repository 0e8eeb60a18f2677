"""Runtimes: what runs the stack's components. `up` picks one; the others follow the run directory.

    process   OS processes from pip wheels (trade_ops/supervisor.py), the default
    docker    containers on a Docker engine, through the SDK (trade_ops/runtime/docker.py)

Both satisfy `Runtime`; state.json records which one started a stack, so `ps`, `logs`
and `down` reach it without being told, and doctor and bench find its ports as always.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from trade_ops.errors import UsageError

if TYPE_CHECKING:
    from trade_ops.rundir import RunDir
    from trade_ops.stack import Stack
    from trade_ops.supervisor import ProcessStatus

__all__ = ["RUNTIMES", "RUNTIME_ENV", "Runtime", "claim", "get", "of", "recorded", "resolve"]

RUNTIMES = ("process", "docker")
RUNTIME_ENV = "TRADE_OPS_RUNTIME"


class Runtime(Protocol):
    def up(self, run_dir: RunDir, stack: Stack, *, only: list[str] | None = ..., timeout: float = ...,
           on_progress: Callable[[ProcessStatus], None] | None = ...) -> list[ProcessStatus]: ...

    def status(self, run_dir: RunDir) -> list[ProcessStatus]: ...

    def down(self, run_dir: RunDir, *, grace: float = ...) -> list[ProcessStatus]: ...

    def log_tail(self, run_dir: RunDir, name: str, lines: int = ...) -> str: ...

    def follow_log(self, run_dir: RunDir, name: str, lines: int = ...,
                   interval: float = ...) -> Iterator[str]: ...


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
    from trade_ops import supervisor

    return supervisor


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
