"""Options shared by several commands, so each reads the same flag and env var.

Every command with --junit, --metrics or --html also appends its markdown summary to
$GITHUB_STEP_SUMMARY when CI sets it (trade_ops/render/publish.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services import env

__all__ = ["HtmlOpt", "JsonOpt", "JunitOpt", "MetricsOpt", "RunDirOpt", "StackOpt"]

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
JunitOpt = Annotated[
    Path | None,
    typer.Option("--junit", metavar="FILE", show_default="not written",
                 help="Write a JUnit XML file: one test case per check, gate or invariant (CI test panels)."),
]
MetricsOpt = Annotated[
    Path | None,
    typer.Option("--metrics", metavar="FILE", show_default="not written",
                 help="Write the result as Prometheus text (node_exporter's textfile collector reads it)."),
]
HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", metavar="FILE", show_default="not written",
                 help="Write one self-contained HTML page (plots embedded, nothing loaded from the "
                      "network)."),
]
