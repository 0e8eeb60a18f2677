"""`trade-ops restart [SVC...]`: stop processes (or containers) of the running stack and start them again."""

from __future__ import annotations

from typing import Annotated

import typer

from trade_ops.commands.options import GraceOpt, JsonOpt, RunDirOpt, TimeoutOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]


@cli_errors
def restart(services: Annotated[list[str] | None, typer.Argument(
                help="Services (or valkey, nats) to restart [default: every process of the stack].",
                show_default=False)] = None,
            grace: GraceOpt = 3.0, timeout: TimeoutOpt = 30.0, json: JsonOpt = False,
            run_dir: RunDirOpt = None) -> None:
    """Restart processes of the running stack (all of them by default); wait until ready."""
    import time

    from trade_ops import console as out
    from trade_ops import runtime
    from trade_ops.commands.proctable import process_rows, process_table
    from trade_ops.rundir import RunDir

    if json:
        out.use_json()
    rd = RunDir(run_dir)
    started = time.monotonic()
    statuses = runtime.of(rd).restart(rd, services or None, grace=grace, timeout=timeout)
    seconds = time.monotonic() - started
    if json:
        out.print_json({"status": "ok", "exit_code": 0, "seconds": round(seconds, 3),
                        "processes": process_rows(statuses)})
        return
    out.console.print(process_table(statuses, title=f"restarted in {rd.path}"))
    out.console.print(f"[green]{len(statuses)} restarted and ready[/] in {seconds:.2f} s")


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops restart oms", "restart the oms process"),
        ("trade-ops restart", "restart every process of the stack"),
    ))(restart)
