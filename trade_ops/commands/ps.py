"""`trade-ops ps`: each process of the running stack, alive or dead, ready or not."""

from __future__ import annotations

import typer

from trade_ops.commands.options import JsonOpt, RunDirOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]


@cli_errors
def ps(json: JsonOpt = False, run_dir: RunDirOpt = None) -> None:
    """Show each process of the stack: pid, port, state, time to ready, uptime and restarts."""
    from trade_ops import console as out
    from trade_ops import runtime
    from trade_ops.commands.proctable import process_rows, process_table
    from trade_ops.rundir import RunDir

    if json:
        out.use_json()
    rd = RunDir(run_dir)
    statuses = runtime.of(rd).status(rd)
    if json:
        out.print_json(out.envelope({"run_dir": str(rd.path), "processes": process_rows(statuses)}, 0))
    elif not statuses:
        out.console.print(f"nothing running: {rd.no_stack_error().message}", markup=False, soft_wrap=True)
    else:
        out.console.print(process_table(statuses, title=f"stack in {rd.path}"))


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops ps", "a table of the processes"),
        ("trade-ops ps --json", "the same as one JSON document"),
    ))(ps)
