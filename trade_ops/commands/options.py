"""Options shared by several commands, so each reads the same flag and env var.

Every command with --junit, --metrics or --html also appends its markdown summary to
$GITHUB_STEP_SUMMARY when CI sets it (trade_ops/render/publish.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services import env

__all__ = ["GraceOpt", "HtmlOpt", "JsonOpt", "JunitOpt", "MetricsOpt", "OrderOpt", "RunDirOpt", "StackOpt",
           "TimeoutOpt", "order_fields"]

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
OrderOpt = Annotated[
    list[str] | None,
    typer.Option("--order", metavar="KEY=VALUE",
                 help="An order field (account, symbol, quantity, order_type, price, time_in_force), "
                      "in this project's names; the OMS's contract renames them; repeatable "
                      "[default: none]."),
]


def order_fields(pairs: list[str]) -> dict[str, object]:
    """`--order price=50000 --order symbol=ETHUSDT` -> {"price": 50000.0, "symbol": "ETHUSDT"}."""
    from trade_ops.errors import UsageError

    fields: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--order {pair!r} must be KEY=VALUE, for example --order price=50000")
        try:
            fields[key.strip()] = float(value)
        except ValueError:
            fields[key.strip()] = value.strip()
    return fields
GraceOpt = Annotated[float, typer.Option(
    "--grace", min=0.0, help="Seconds between SIGTERM and SIGKILL.")]
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", min=0.1, help="Seconds to wait for everything to be ready.")]
