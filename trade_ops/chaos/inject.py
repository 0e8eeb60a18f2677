"""The Injector: a fault's action on one component, through the runtime that started the stack
(a signal to a process, the same through the Docker engine to a container) or, for a
component trade-ops did not start, where the stack file says it runs (chaos/foreign.py)."""

from __future__ import annotations

from trade_ops import runtime as runtimes
from trade_ops.chaos.foreign import Foreign, foreign_control
from trade_ops.errors import StartupError, UsageError
from trade_ops.rundir import RunDir
from trade_ops.runtime import Runtime
from trade_ops.stack import Stack

__all__ = ["Injector"]


class Injector:
    """The stack's faults, by component name: through the runtime that started it, or, for a
    component trade-ops did not start (not in `ours`), where the stack file says it runs
    (chaos/foreign.py; run_chaos has checked each fault can act there)."""

    def __init__(self, run_dir: RunDir, stack: Stack, runtime: Runtime | None = None,
                 ours: set[str] | None = None) -> None:
        self.run_dir, self.stack = run_dir, stack
        self.runtime = runtime or runtimes.of(run_dir)
        self.ours = ours  # None: every component is the runtime's

    def _foreign(self, name: str) -> Foreign | None:
        if self.ours is None or name in self.ours:
            return None
        found = foreign_control(self.stack, name)
        if found is None:
            raise UsageError(f"{name} is not run by trade-ops here, and the stack file does not say "
                             "how it runs")
        return found

    def kill(self, name: str) -> None:
        if f := self._foreign(name):
            f.kill()
        else:
            self.runtime.kill(self.run_dir, name)

    def pause(self, name: str) -> None:
        if f := self._foreign(name):
            f.pause()
        else:
            self.runtime.pause(self.run_dir, name)

    def resume(self, name: str) -> None:
        if f := self._foreign(name):
            f.resume()
        else:
            self.runtime.resume(self.run_dir, name)

    def start(self, name: str, timeout: float = 30.0) -> str | None:
        """Start it again; None once ready, else why not (it runs, but is not healthy yet:
        the run goes on, and the invariants are judged all the same)."""
        if f := self._foreign(name):
            return f.start(timeout)
        try:
            self.runtime.revive(self.run_dir, self.stack, name, timeout=timeout)
        except StartupError as exc:
            return f"{name} started again but not ready in {timeout:g}s: {exc.message}"
        return None
