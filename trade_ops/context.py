"""One Context per command: the run directory, the stack, its credentials and its runtime,
resolved once by the CLI and handed down; the library never goes back from a path to a
run directory, nor loads the stack or the credentials a second time.

    run_dir       --run-dir, else TRADE_OPS_RUN_DIR, else the nearest .trade-ops/ (rundir.py)
    stack         the stack file (--stack, TRADE_OPS_STACK, else the one the running stack
                  was started with) at the running stack's port offset, or --port-offset
    stack_file    the --stack FILE as given, for remedies that repeat it
    credentials   the stack's credentials (None when it has none yet), loaded when first asked
    runtime       the runtime that started the stack here (process when none is recorded)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from trade_ops import credentials, runtime
from trade_ops.credentials import Credentials
from trade_ops.rundir import RunDir
from trade_ops.runtime import Runtime
from trade_ops.stack import Stack

__all__ = ["Context"]


@dataclass
class Context:
    run_dir: RunDir
    stack: Stack
    stack_file: Path | None = None

    @classmethod
    def resolve(cls, run_dir: Path | str | None = None, stack_file: Path | str | None = None, *,
                port_offset: int | None = None) -> Context:
        """What the command line names (each None: found as the module docstring says)."""
        rd = RunDir(run_dir)
        stack = rd.stack(stack_file)
        if port_offset is not None:
            stack = stack.with_offset(port_offset)
        return cls(rd, stack, Path(stack_file) if stack_file else None)

    @cached_property
    def credentials(self) -> Credentials | None:
        return credentials.load(self.run_dir.path)

    @cached_property
    def runtime(self) -> Runtime:
        return runtime.of(self.run_dir)

    def running(self) -> list[str]:
        """The components of the stack here still alive (none when nothing was started here)."""
        return runtime.running(self.run_dir)
