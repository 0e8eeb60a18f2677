"""The process runtime: the supervisor's processes (trade_ops/runtime/supervisor.py), as a `Runtime`.

Lifecycle is the supervisor's own; what is added here is what chaos and `logs` need of
any runtime: faults by signal (by pid, from the run directory's records) and the logs'
lines, read from the log files the supervisor writes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import psutil

from trade_ops import logfiles, processes
from trade_ops.errors import UsageError
from trade_ops.plan import ProcessStatus
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import Stack

__all__ = ["ProcessRuntime"]


class ProcessRuntime:
    name = "process"

    # -- lifecycle: the supervisor's ----------------------------------------------------------
    def up(self, run_dir: RunDir, stack: Stack, *, only: list[str] | None = None, timeout: float = 30.0,
           on_progress: Callable[[ProcessStatus], None] | None = None) -> list[ProcessStatus]:
        return supervisor.up(run_dir, stack, only=only, timeout=timeout, on_progress=on_progress)

    def status(self, run_dir: RunDir) -> list[ProcessStatus]:
        return supervisor.status(run_dir)

    def alive(self, run_dir: RunDir) -> list[str]:
        return list(self.processes(run_dir))

    def processes(self, run_dir: RunDir) -> dict[str, psutil.Process]:
        if not run_dir.has_state():
            return {}
        found = {name: processes.find_ours(rec.pid, rec.started_at, rec.command)
                 for name, rec in run_dir.load_state().processes.items()}
        return {name: p for name, p in found.items() if p is not None}

    def containers(self, run_dir: RunDir) -> str | None:
        return None

    def down(self, run_dir: RunDir, *, grace: float = 3.0) -> list[ProcessStatus]:
        return supervisor.down(run_dir, grace=grace)

    def restart(self, run_dir: RunDir, names: list[str] | None = None, *, grace: float = 3.0,
                timeout: float = 30.0) -> list[ProcessStatus]:
        return supervisor.restart(run_dir, names, grace=grace, timeout=timeout)

    # -- logs -------------------------------------------------------------------------------
    def log_lines(self, run_dir: RunDir, names: list[str] | None = None, since: float | None = None,
                  lines: int | None = None) -> list[logfiles.Line]:
        paths = supervisor.logs_of(run_dir, names or None)
        if not paths:
            raise run_dir.no_stack_error()
        return logfiles.merged(logfiles.existing(paths.items()), since=since, lines=lines)

    def follow_lines(self, run_dir: RunDir, names: list[str] | None = None) -> Iterator[logfiles.Line]:
        return logfiles.follow(supervisor.logs_of(run_dir, names or None))

    # -- faults (trade-ops chaos) -------------------------------------------------------------
    def _pid(self, run_dir: RunDir, name: str) -> int:
        rec = run_dir.load_state().processes.get(name) if run_dir.has_state() else None
        proc = processes.find_ours(rec.pid, rec.started_at, rec.command) if rec else None
        if proc is None:
            raise UsageError(f"{name} is not running from {run_dir.path}")
        return int(proc.pid)

    def kill(self, run_dir: RunDir, name: str) -> None:
        """SIGKILL, and wait (up to 5 s) until it is gone."""
        pid = self._pid(run_dir, name)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and processes.exit_code(pid) is None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)

    def pause(self, run_dir: RunDir, name: str) -> None:
        os.kill(self._pid(run_dir, name), signal.SIGSTOP)

    def resume(self, run_dir: RunDir, name: str) -> None:
        os.kill(self._pid(run_dir, name), signal.SIGCONT)

    def revive(self, run_dir: RunDir, stack: Stack, name: str, timeout: float = 30.0) -> None:
        """Start a killed component again and wait until it is ready (a StartupError if not)."""
        supervisor.up(run_dir, stack, only=[name], timeout=timeout)
