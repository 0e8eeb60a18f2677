"""`trade-ops report perf|status`: markdown reports from saved bench runs and doctor results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trade_ops import console as out
from trade_ops.commands.options import HtmlOpt, JsonOpt, JunitOpt, RunDirOpt
from trade_ops.errors import ExitCode
from trade_ops.helptext import examples

if TYPE_CHECKING:
    from rich.table import Table

    from trade_ops.report.compare import Comparison

__all__ = ["register"]

report_app = typer.Typer(help="Write markdown reports: before/after performance, stack status.",
                         no_args_is_help=True)


@report_app.command("perf", epilog=examples(
    ("trade-ops report perf before after", "compare the runs saved as before and after"),
    ("trade-ops report perf before after --expect '2x p50'", "and fail unless p50 halved"),
    ("trade-ops report perf base head --expect 'p99 <= 1.1x'", "fail on a p99 regression over 10%"),
))
@out.cli_errors
def perf(
    before: Annotated[str, typer.Argument(help="The run before the change: a saved run's name or a path.")],
    after: Annotated[str, typer.Argument(help="The run after the change: a saved run's name or a path.")],
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the report; plots go next to it "
                      "[default: RUN_DIR/reports/PERFORMANCE_REPORT.md].")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Where saved runs are found by name "
                                                                     "[default: RUN_DIR/runs].")] = None,
    run_dir: RunDirOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Compare runs of different scenarios or "
                                                        "settings, or invalid runs.")] = False,
    expect: Annotated[list[str] | None, typer.Option(
        "--expect", help="A gate: '5x p50' or '20% p99' (at least that much better), 'p99 <= 1.1x' or "
        "'p99 +10%' (no worse than that); exit 1 when not met. Repeatable.")] = None,
    min_effect: Annotated[str, typer.Option("--min-effect", help="Smallest change called a change.")] = "5%",
    note: Annotated[list[str] | None, typer.Option(
        "--note", help="A line of text for the report's 'how it was produced' section. Repeatable.")] = None,
    json_out: JsonOpt = False,
    junit: JunitOpt = None,
    html: HtmlOpt = None,
) -> None:
    """Compare two saved bench runs: table, significance, plots -> PERFORMANCE_REPORT.md."""
    from trade_ops.commands.json_errors import json_errors
    from trade_ops.render.publish import publish_perf
    from trade_ops.report.perf import comparison_document, parse_min_effect, write_perf_report
    from trade_ops.rundir import RunDir

    if json_out:
        out.use_stderr()
    with json_errors(json_out):
        report = write_perf_report(before, after, RunDir(run_dir), out=out_path, runs_dir=runs_dir,
                                   force=force, min_effect=parse_min_effect(min_effect), expect=expect or [],
                                   notes=note or [],
                                   progress=lambda msg: out.console.print(f"[dim]{msg}...[/]"))
    cmp = report.comparison
    if json_out:
        out.print_json(comparison_document(report))
    for reason in cmp.forced_over:
        out.console.print(f"[yellow]warning:[/] compared with --force: {reason}")
    for warning in cmp.warnings:
        out.console.print(f"[yellow]note:[/] {warning}")
    out.console.print(_table(cmp))
    out.console.print(f"wrote {report.path} and {len(report.plots)} plots (SVG + PNG)")
    for verdict in report.verdicts:
        mark = "[green]met[/]" if verdict.met else "[bold red]NOT MET[/]"
        out.console.print(f"expect {verdict.expectation.describe()!r}: {mark}: {verdict.detail}")
    for path in publish_perf(report, junit=junit, html=html):
        out.console.print(f"[dim]wrote {path}[/]")
    if not report.expectations_met:
        raise typer.Exit(int(ExitCode.FAILED))


@report_app.command("status", epilog=examples(
    ("trade-ops report status", "STATUS_REPORT.md from the last doctor run"),
))
@out.cli_errors
def status(
    run_dir: RunDirOpt = None,
    out_path: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the report [default: RUN_DIR/reports/STATUS_REPORT.md].")] = None,
) -> None:
    """Re-render STATUS_REPORT.md from the last `trade-ops doctor` result."""
    from trade_ops.report.status import write_status_report
    from trade_ops.rundir import RunDir

    path = write_status_report(RunDir(run_dir), out_path)
    out.console.print(f"wrote {path}")


def _table(cmp: Comparison) -> Table:
    from rich.table import Table

    from trade_ops.report.compare import format_value

    table = Table(title=f"{cmp.before.name} -> {cmp.after.name}", title_justify="left")
    for name in ("metric", "before", "after", "change", "verdict", "test"):
        table.add_column(name, justify="right" if name in ("before", "after", "change") else "left")
    for row in cmp.rows:
        unit = row.metric.unit
        table.add_row(row.metric.label, format_value(row.before, unit), format_value(row.after, unit),
                      row.change_text(), row.verdict(), row.significance.describe(),
                      style={"changed": "bold", "inconclusive": "yellow"}.get(row.call, "dim"))
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
