"""Starting a stack: the one library call behind `trade-ops up` and `trade-ops doctor --up`.

The runtime is chosen before (`trade_ops.runtime.choose`: the flag, TRADE_OPS_RUNTIME, the
one the run directory records, else process); this starts what is not running, waits until
ready, and says whether this start created the stack's credentials (its operator token is
then shown once, by the caller).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trade_ops import credentials
from trade_ops.plan import ProcessStatus
from trade_ops.rundir import RunDir
from trade_ops.runtime import Runtime
from trade_ops.stack import Stack

__all__ = ["Started", "start_stack"]


@dataclass
class Started:
    statuses: list[ProcessStatus]
    seconds: float
    operator_token: str | None  # only when this start created the credentials: shown once
    credentials_file: Path  # where the token is kept


def start_stack(run_dir: RunDir, stack: Stack, runtime: Runtime, *, only: list[str] | None = None,
                timeout: float = 30.0, durability: str | None = None,
                on_progress: Callable[[ProcessStatus], None] | None = None) -> Started:
    """Start what is not running of `stack` (or of `only` and what it needs) with `runtime`.

    `durability` (up --durability) is kept in the run directory for later starts. On Ctrl-C,
    what this start had started is stopped (errors.Interrupted says what)."""
    if durability is not None:
        run_dir.keep_durability(durability)
    had_credentials = credentials.load(run_dir.path) is not None
    started = time.monotonic()
    statuses = runtime.up(run_dir, stack, only=only, timeout=timeout, on_progress=on_progress)
    seconds = time.monotonic() - started
    creds = credentials.load(run_dir.path)
    token = creds.operator_token if creds is not None and not had_credentials else None
    return Started(statuses, seconds, token, run_dir.secrets / "credentials.json")
