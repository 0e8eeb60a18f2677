"""What each command writes besides its own output: the files its `--junit`, `--metrics`
and `--html` options name, and its part of the CI job summary when $GITHUB_STEP_SUMMARY
is set. Commands call one function here with their result; each returns the files written.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from trade_ops.render.step_summary import append_step_summary

if TYPE_CHECKING:
    from trade_ops.bench.runner import BenchOutcome
    from trade_ops.chaos.result import ChaosResult
    from trade_ops.doctor.model import DoctorReport
    from trade_ops.report.perf import PerfReport

__all__ = ["publish_bench", "publish_chaos", "publish_doctor", "publish_perf"]


def publish_doctor(doc: DoctorReport, *, junit: Path | None = None,
                   metrics: Path | None = None) -> list[Path]:
    from trade_ops.doctor.status_report import render_status_report

    written = []
    if junit:  # each writer's libraries only where its file is asked for (prometheus_client,
        # hdrh and xml were ~25 ms of every doctor run that wrote neither)
        from trade_ops.render.junit import write_junit
        from trade_ops.render.verdicts import doctor_suite

        written.append(write_junit(junit, doctor_suite(doc)))
    if metrics:
        from trade_ops.render.prometheus import doctor_families, write_metrics

        written.append(write_metrics(metrics, doctor_families(doc)))
    append_step_summary(render_status_report(doc))
    return written


def publish_bench(outcome: BenchOutcome, *, junit: Path | None = None, metrics: Path | None = None,
                  html: Path | None = None) -> list[Path]:
    from trade_ops.render.junit import write_junit
    from trade_ops.render.markdown import bench_markdown
    from trade_ops.render.prometheus import bench_families, write_metrics
    from trade_ops.render.verdicts import bench_suite

    r = outcome.result
    written = [write_junit(junit, bench_suite(r))] if junit else []
    written += [write_metrics(metrics, bench_families(r, outcome.analysis.latency))] if metrics else []
    if html:
        written.append(_bench_page(outcome, html))
    append_step_summary(bench_markdown(r))
    return written


def _bench_page(outcome: BenchOutcome, path: Path) -> Path:
    from trade_ops.render.html import write_html
    from trade_ops.render.markdown import bench_markdown
    from trade_ops.report.plots import run_plots
    from trade_ops.report.runs import Run
    from trade_ops.savedruns import FORMAT, SavedRun

    r, a = outcome.result, outcome.analysis
    name = f"bench {r.target} ({r.scenario})"
    run = Run(name, path, SavedRun(format=FORMAT, name=name, created_at="", results=r,
                                   histograms=a.histograms_json(), intervals=a.intervals_saved()))
    with tempfile.TemporaryDirectory(prefix="trade-ops-html-") as tmp:
        plots = run_plots(run, Path(tmp), "bench")
        text = bench_markdown(r) + "\n## Plots\n\n" + "\n\n".join(
            f"### {p.title}\n\n![{p.title}]({p.png.name})" for p in plots) + "\n"
        return write_html(path, f"trade-ops {name}", text, Path(tmp))


def publish_chaos(result: ChaosResult, *, junit: Path | None = None) -> list[Path]:
    from trade_ops.render.junit import write_junit
    from trade_ops.render.markdown import chaos_markdown
    from trade_ops.render.verdicts import chaos_suite

    written = [write_junit(junit, chaos_suite(result))] if junit else []
    append_step_summary(chaos_markdown(result))
    return written


def publish_perf(report: PerfReport, *, junit: Path | None = None, html: Path | None = None) -> list[Path]:
    from trade_ops.render.html import write_html
    from trade_ops.render.junit import write_junit
    from trade_ops.render.markdown import perf_markdown
    from trade_ops.render.verdicts import perf_suite

    written = [write_junit(junit, perf_suite(report))] if junit else []
    if html:
        cmp = report.comparison
        written.append(write_html(html, f"trade-ops report perf: {cmp.before.name} -> {cmp.after.name}",
                                  report.path.read_text(encoding="utf-8"), report.path.parent))
    append_step_summary(perf_markdown(report))
    return written
