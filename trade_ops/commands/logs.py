"""`trade-ops logs SERVICE`: the tail of one process's log, or follow it."""

from __future__ import annotations

from typing import Annotated

import typer

from trade_ops.commands.options import RunDirOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]


@cli_errors
def logs(service: Annotated[str, typer.Argument(help="A service, or valkey / nats.")],
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
         lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines of tail to show.")] = 50,
         run_dir: RunDirOpt = None) -> None:
    """Print the last lines of a process's log (-f to follow it)."""
    from trade_ops import console as out
    from trade_ops import runtime
    from trade_ops.rundir import RunDir

    rd = RunDir(run_dir)
    if not follow:
        out.console.print(runtime.of(rd).log_tail(rd, service, lines), markup=False, highlight=False,
                          soft_wrap=True)
        return
    try:
        for chunk in runtime.of(rd).follow_log(rd, service, lines):
            out.console.print(chunk, markup=False, highlight=False, soft_wrap=True, end="")
    except KeyboardInterrupt:  # Ctrl-C is how a follow ends
        pass


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops logs", "the last lines of every process, interleaved by time"),
        ("trade-ops logs oms -f", "follow the oms log"),
        ("trade-ops logs --since 5m -n 0", "everything of the last five minutes"),
    ))(logs)
