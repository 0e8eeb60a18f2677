"""`report perf` as a library call: load, compare, plot, gate, write the markdown."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trade_ops.errors import UsageError
from trade_ops.report.compare import DEFAULT_MIN_EFFECT, Comparison, compare_runs
from trade_ops.report.expect import Verdict, check, parse_expectation
from trade_ops.report.markdown import bench_command, render_report
from trade_ops.report.plots import Plot, write_plots
from trade_ops.report.result import ExpectationResult, ReportResult, RowResult
from trade_ops.report.runs import load_run
from trade_ops.rundir import RunDir

__all__ = ["PERF_REPORT", "PerfReport", "comparison_document", "parse_min_effect", "report_result",
           "write_perf_report"]

PERF_REPORT = "PERFORMANCE_REPORT.md"  # its name in the run directory's reports/


@dataclass(frozen=True)
class PerfReport:
    path: Path
    comparison: Comparison
    plots: list[Plot]
    verdicts: list[Verdict]

    @property
    def expectations_met(self) -> bool:
        return all(v.met for v in self.verdicts)


def parse_min_effect(text: str) -> float:
    """'5%' or '0.05' -> 0.05."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
    if not match:
        raise UsageError(f"bad --min-effect {text!r}: write a percentage such as '5%'")
    value = float(match[1]) / (100.0 if match[2] else 1.0)
    if not 0 <= value < 1:
        raise UsageError(f"bad --min-effect {text!r}: it must be between 0% and 100%")
    return value


def write_perf_report(before: str, after: str, run_dir: RunDir, *, out: Path | None = None,
                      runs_dir: Path | None = None, force: bool = False,
                      min_effect: float = DEFAULT_MIN_EFFECT, expect: Sequence[str] = (),
                      notes: Sequence[str] = (), extra_commands: Sequence[str] = (),
                      progress: Callable[[str], None] | None = None) -> PerfReport:
    expectations = [parse_expectation(e) for e in expect]  # bad gates fail before any work
    rd = run_dir
    given_out = out
    out = out or rd.reports / PERF_REPORT
    run_b, run_a = load_run(before, runs_dir or rd.runs), load_run(after, runs_dir or rd.runs)
    say = progress or (lambda _msg: None)
    say("comparing runs")
    comparison = compare_runs(run_b, run_a, min_effect=min_effect, force=force)
    verdicts = check(comparison, expectations)
    say("drawing plots")
    plots = write_plots(run_b, run_a, out.parent, out.stem)
    argv = ["trade-ops", "report", "perf", before, after]
    if given_out is not None:
        argv += ["--out", str(out)]
    if not rd.searched:  # named (--run-dir or its env var): the printed command names it too
        argv += ["--run-dir", str(rd.path)]
    if runs_dir is not None:
        argv += ["--runs-dir", str(runs_dir)]
    argv += ["--force"] if force else []
    if min_effect != DEFAULT_MIN_EFFECT:
        argv += ["--min-effect", f"{min_effect * 100:g}%"]
    for e in expect:
        argv += ["--expect", e]
    commands = [*extra_commands, bench_command(run_b), bench_command(run_a), shlex.join(argv)]
    env = {**run_b.meta.command_env, **run_a.meta.command_env}
    notes = [*notes, *(f"The bench commands read {what} from `{var}` (never saved): set it before "
                       "running them." for var, what in env.items())]
    text = render_report(comparison, plots=plots, report_path=out, commands=commands, notes=notes,
                         verdicts=verdicts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return PerfReport(out, comparison, plots, verdicts)


def report_result(report: PerfReport) -> ReportResult:
    """`report perf --json`: every row with its verdict and test, the gates, the warnings."""
    cmp = report.comparison
    return ReportResult(
        status="pass" if report.expectations_met else "fail",
        exit_code=0 if report.expectations_met else 1,
        before=cmp.before.name, after=cmp.after.name, report=str(report.path),
        min_effect=cmp.min_effect, forced_over=cmp.forced_over, warnings=cmp.warnings,
        rows=[RowResult(metric=r.metric.key, unit=r.metric.unit, before=r.before, after=r.after,
                        change=r.change, significant=r.significant, call=r.call, verdict=r.verdict(),
                        interval=list(r.significance.interval) if r.significance.interval else None,
                        margin=r.significance.margin, test=r.significance.test,
                        p_value=r.significance.p_value, describe=r.significance.describe())
              for r in cmp.rows],
        expectations=[ExpectationResult(expect=v.expectation.describe(), met=v.met, detail=v.detail)
                      for v in report.verdicts])


def comparison_document(report: PerfReport) -> dict[str, Any]:
    """The JSON document of `report_result`."""
    return report_result(report).to_json()
