"""Options shared by several commands, so each reads the same flag and env var."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services import env

__all__ = ["JsonOpt", "RunDirOpt", "StackOpt"]

RunDirOpt = Annotated[
    Path | None,
    typer.Option("--run-dir", envvar=env.RUN_DIR, show_envvar=True,
                 help="Run directory holding the stack's state, logs, NATS data and lake "
                      "[default: the nearest .trade-ops/ here or above, else ./.trade-ops]."),
]
StackOpt = Annotated[
    Path | None,
    typer.Option("--stack", envvar=env.STACK, show_envvar=True,
                 help="Stack file merged over the builtin stack definition "
                      "[default: the one the running stack was started with, else none]."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else there.")
]
