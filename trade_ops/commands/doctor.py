"""`trade-ops doctor`: is every part healthy; if not, the root cause and the fix."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from trade_ops import console as out
from trade_ops.commands.options import JsonOpt, RunDirOpt, StackOpt
from trade_ops.errors import ExitCode, UsageError

__all__ = ["register"]

DEFAULT_REPORT = "reports/STATUS_REPORT.md"


def doctor(
    up: Annotated[bool, typer.Option("--up", help="Start the stack first (`trade-ops up`).")] = False,
    json_: JsonOpt = False,
    report: Annotated[str | None, typer.Option(
        "--report", is_flag=False, flag_value=DEFAULT_REPORT, metavar="[PATH]",
        help=f"Write STATUS_REPORT.md (default path: {DEFAULT_REPORT}).")] = None,
    watch: Annotated[float | None, typer.Option(
        "--watch", metavar="S", min=0.5, help="Re-run every S seconds and show what changed.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the gate too.")] = False,
    run_dir: RunDirOpt = None,
    stack: StackOpt = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="S", min=0.05, help="Timeout of each probe, in seconds.")] = 1.0,
    url: Annotated[list[str] | None, typer.Option(
        "--url", metavar="SVC=URL", help="Where a service answers (repeatable): examine any deployment.")]
        = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the details of passing checks too.")]
        = False,
    compose: Annotated[Path | None, typer.Option(
        "--compose", help="compose.yaml whose healthchecks to verify (default: ./compose.yaml).")] = None,
) -> None:
    """Diagnose the stack: every problem, its root cause and its fix, in about a second."""
    from trade_ops.doctor import build_target, render_status_report, run_doctor, save_last
    from trade_ops.doctor.render import changes, render, summary_line, verdict
    from trade_ops.doctor.target import parse_urls
    from trade_ops.rundir import RunDir

    if json_:
        out.use_stderr()
    if watch is not None and json_:
        raise UsageError("--watch and --json do not combine: --json prints one document")
    if compose is not None and not compose.is_file():
        raise UsageError(f"--compose {compose}: no such file")
    rd = RunDir(run_dir)
    urls = parse_urls(url or [])
    if up:
        _start(rd, stack)

    previous = None
    while True:
        target = build_target(rd, stack, urls=urls, timeout=timeout, compose=compose)
        doc = run_doctor(target, strict=strict)
        save_last(doc, rd.path)
        if report:
            path = Path(report)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_status_report(doc))
        if json_:
            out.print_json(doc)
        elif previous is None:
            render(doc, out.console, verbose=verbose)
            if report:
                out.console.print(f"[dim]wrote {report}[/]")
        else:
            moved = changes(previous, doc)
            stamp = time.strftime("%H:%M:%S")
            out.console.print(f"[dim]{stamp}[/] {verdict(doc)} · {summary_line(doc)}"
                              + ("" if moved else " [dim](no change)[/]"))
            for line in moved:
                out.console.print(f"    {line}", markup=False, emoji=False)
        if watch is None:
            break
        previous = doc
        try:
            time.sleep(watch)
        except KeyboardInterrupt:
            break
    raise typer.Exit(int(doc["exit_code"]) if doc["exit_code"] else int(ExitCode.OK))


def _start(rd: object, stack_file: Path | None) -> None:
    from trade_ops import supervisor

    stack = rd.stack(stack_file)  # type: ignore[attr-defined]
    with out.console.status("starting the stack ..."):
        supervisor.up(rd, stack)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    app.command("doctor")(out.cli_errors(doctor))
