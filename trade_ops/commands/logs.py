"""`trade-ops logs [SVC...]`: the logs of the stack's processes, interleaved by time, like compose."""

from __future__ import annotations

from typing import Annotated

import typer

from trade_ops.commands.options import JsonOpt, RunDirOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]

_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_green")


@cli_errors
def logs(services: Annotated[list[str] | None, typer.Argument(
             help="Services (or valkey, nats) [default: every process of the stack].",
             show_default=False)] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
         lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines of tail to show; with "
                                            "--since, 0 shows every line since then.")] = 50,
         since: Annotated[str | None, typer.Option("--since", metavar="WHEN", help="Only lines from then "
                                                   "on: 30s, 5m, 2h, 1d, 23:25 or 2026-11-29T23:25:00 "
                                                   "[default: no limit].")] = None,
         json: JsonOpt = False,
         run_dir: RunDirOpt = None) -> None:
    """Print the last lines of the stack's logs, interleaved by time (-f to follow them).

    Each process's current log: the one its running (or last) start wrote.
    """
    from rich.text import Text

    from trade_ops import console as out
    from trade_ops import logfiles, runtime
    from trade_ops.errors import UsageError
    from trade_ops.rundir import RunDir

    if json:
        out.use_json()
        if follow:
            raise UsageError("--follow and --json do not combine: --json prints one document")
    start = logfiles.parse_since(since) if since is not None else None
    rd = RunDir(run_dir)
    chosen = runtime.of(rd)  # log files of processes, or the Docker engine's logs of containers
    count = None if start is not None and lines == 0 else lines
    tail = chosen.log_lines(rd, services or None, since=start, lines=count)
    if json:
        out.print_json(out.envelope({"lines": [{"time": ln.time, "name": ln.name, "text": ln.text}
                                               for ln in tail]}, 0))
        return
    names = services or sorted({ln.name for ln in tail}) or ["-"]
    width = max(len(n) for n in names)
    colour = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(sorted(names))}
    single = len(services or []) == 1 or len(names) == 1

    def show(line: logfiles.Line) -> None:
        if single:  # one log: its lines as written, as `tail` would
            out.console.print(line.text, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            out.console.print(Text.assemble((f"{line.name.ljust(width)} | ", colour.get(line.name, "white")),
                                            line.text), highlight=False, emoji=False, soft_wrap=True)

    for line in tail:
        show(line)
    if follow:
        try:
            for line in chosen.follow_lines(rd, services or None):
                show(line)
        except KeyboardInterrupt:  # Ctrl-C is how a follow ends: 130, as for any interrupt
            out.interrupted_quietly()


def register(app: typer.Typer) -> None:
    app.command(epilog=examples(
        ("trade-ops logs", "the last lines of every process, interleaved by time"),
        ("trade-ops logs oms -f", "follow the oms log"),
        ("trade-ops logs --since 5m -n 0", "every line of the last five minutes"),
    ))(logs)
