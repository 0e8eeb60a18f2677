"""PERFORMANCE_REPORT.md: the runs, the table, the SLO verdicts, the plots, the commands."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trade_ops.bench.render import cpu_line
from trade_ops.report import stats
from trade_ops.report.compare import INCONCLUSIVE, NO_CHANGE, NOT_ENOUGH, Comparison, format_value
from trade_ops.report.expect import Verdict
from trade_ops.report.plots import Plot
from trade_ops.report.runs import Run
from trade_ops.savedruns import SloResult, Warmup

__all__ = ["bench_command", "method_paragraph", "render_report", "table"]


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def bench_command(run: Run) -> str:
    """The command that makes the run again: recorded by bench since it records one, else
    rebuilt from the run's settings (a scenario that no longer exists, such as an old
    "adhoc", is left out: the flags then apply over the default scenario)."""
    from trade_ops.bench.scenario import known_scenarios

    recorded = run.meta.command
    if recorded:
        return recorded if isinstance(recorded, str) else shlex.join(recorded)
    s = run.settings
    parts = ["trade-ops", "bench", s.target or "oms"]
    if run.scenario.get("name") in known_scenarios():
        parts += ["--scenario", str(run.scenario["name"])]
    for value, flag in ((s.rate, "--rate"), (s.duration_s, "--duration"), (s.concurrency, "--concurrency"),
                        (s.requests, "--requests")):
        if value is not None:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join([*parts, "--save", run.name, "--force"])


def _load(run: Run) -> str:
    s = run.settings
    if s.model == "closed":
        amount = f"{s.requests} requests" if s.requests else f"{s.duration_s} s"
        return f"closed loop, {s.concurrency} in flight, {amount}"
    return f"open loop, {s.rate} req/s for {s.duration_s} s"


def _runs_section(cmp: Comparison) -> list[str]:
    def host(run: Run) -> str:
        return f"{run.meta.host.cpu} ({run.meta.host.cores} cores)"

    def warmup(w: Warmup | float | None) -> str:
        if not isinstance(w, Warmup):
            return str(w if w is not None else "?")
        parts = [f"{w.seconds:g} s" if w.seconds else "", f"{w.requests} requests" if w.requests else ""]
        return " + ".join(p for p in parts if p) or "none"

    def calibration(run: Run) -> str:
        c = run.saved.calibration
        if c is None:
            return "not measured"
        return f"p50 {c.overhead_p50_ms} ms, p99 {c.overhead_p99_ms} ms"

    def cpu(run: Run) -> str:
        c = run.results.cpu
        return cpu_line(c).removeprefix("CPU per request: ") if c else "not measured"

    def validity(run: Run) -> str:
        res = run.results
        valid = "valid" if res.valid else f"INVALID: {res.invalid_reason or '?'}"
        if not res.overload:
            return valid
        return f"{valid}; **OVERLOADED**: {res.overload.removeprefix('overloaded: ')}"

    def conditions(run: Run) -> str:
        cond = run.results.conditions
        if cond is None or not (cond.before.loadavg and cond.after.loadavg):
            return "not recorded"
        return (f"load average {cond.before.loadavg[0]:.2f} -> {cond.after.loadavg[0]:.2f}"
                + (f", CPU steal {cond.steal_pct:g}%" if cond.steal_pct is not None else ""))

    fields: list[tuple[str, Any]] = [
        ("name", lambda r: f"`{r.name}`"),
        ("file", lambda r: f"`{r.path}`"),
        ("created", lambda r: r.saved.created_at),
        ("scenario", lambda r: f"{r.scenario.get('name', '?')} (hash `{r.scenario.get('hash', '?')}`)"),
        ("target", lambda r: f"{r.settings.target or '?'} at {r.settings.url or '?'}"),
        ("load", _load),
        ("warm-up", lambda r: warmup(r.settings.warmup)),
        ("requests (errors)", lambda r: f"{r.results.requests} ({r.results.errors})"),
        ("validity", validity),
        ("generator overhead", calibration),
        ("CPU per request", cpu),
        ("host conditions (before -> after)", conditions),
        ("git revision", lambda r: f"`{r.meta.git_revision}`" if r.meta.git_revision else "?"),
        ("host", host),
        ("platform", lambda r: r.meta.host.platform),
        ("python", lambda r: r.meta.host.python),
    ]
    lines = ["## Runs", ""]
    lines += table(["", "before", "after"],
                   [[name, get(cmp.before), get(cmp.after)] for name, get in fields])
    pb, pa = cmp.before.meta.packages, cmp.after.meta.packages
    changed = sorted(k for k in set(pb) | set(pa) if pb.get(k) != pa.get(k))
    if changed:
        lines += ["", "Packages that differ: " + ", ".join(
            f"{k} {pb.get(k, '-')} -> {pa.get(k, '-')}" for k in changed) + "."]
    return lines


def _results_section(cmp: Comparison) -> list[str]:
    rows = [[f"**{r.metric.label}**", format_value(r.before, r.metric.unit),
             format_value(r.after, r.metric.unit), r.change_text(), r.ratio_text(),
             r.verdict() if r.call != "changed" else f"**{r.verdict()}**", r.significance.describe()]
            for r in cmp.rows]
    return ["## Results", "",
            *table(["metric", "before", "after", "change", "ratio", "verdict", "test"], rows), "",
            method_paragraph(len(cmp.rows), cmp.min_effect)]


def method_paragraph(rows: int, min_effect: float) -> str:
    """How a row's verdict is reached, in one paragraph (as benchstat's README states its own)."""
    return (
        "**Method.** Each run is cut into intervals (a second by default; partial ones dropped) and each "
        "metric is taken per interval (per-second p50s, p99s, ...; latencies from each request's intended "
        "start, corrected for coordinated omission). The two runs' per-interval values are compared with a "
        "Mann-Whitney U test (no assumption of shape), two-sided at "
        f"p < {stats.ALPHA} after Holm's correction over the {rows} rows; with `--repeat`, Welch's t over "
        "the runs' own values (log scale) must agree. A change is called (better/WORSE) when the test "
        f"rejects \"no change\" and the change is at least {min_effect * 100:g}%. With one run each, nothing "
        "measures how far two runs of one command drift, so a drift is allowed and tested, not assumed "
        "away: the after run's values moved back by the margin (twice the steadier run's "
        f"interval-to-interval spread, {stats.SINGLE_RUN_MIN_MARGIN * 100:g}% to "
        f"{stats.SINGLE_RUN_MAX_MARGIN * 100:g}%) must still differ; a percentile is tested only where an "
        f"interval holds {stats.TAIL_SUPPORT} requests beyond it, and the max never is. A row says "
        f"\"{NO_CHANGE}\" only when the change's confidence interval at the same level "
        f"({100 * (1 - stats.ALPHA / rows):.4g}%: Hodges-Lehmann over the intervals; Welch over repeated "
        "runs) lies within that margin (at least "
        f"the minimum effect); \"{INCONCLUSIVE}\" with the interval when the data allow both no change and "
        f"a larger one; \"{NOT_ENOUGH}\" when no test can run. Only `--repeat` measures run-to-run "
        "variation; single-run verdicts assume the drift stays within the margin.")


def _slo_section(cmp: Comparison) -> list[str]:
    def verdicts(run: Run) -> dict[str, SloResult]:
        return {s.expr: s for s in run.results.slo}

    vb, va = verdicts(cmp.before), verdicts(cmp.after)
    exprs = list(dict.fromkeys([*vb, *va]))
    if not exprs:
        return ["## SLOs", "", "Neither run was given SLOs."]

    def cell(found: SloResult | None) -> str:
        if found is None:
            return "not checked"
        return f"{'PASS' if found.passed else '**FAIL**'} ({found.observed})"

    def overall(run: Run) -> str:
        passed = run.results.passed
        return "?" if passed is None else ("PASS" if passed else "**FAIL**")

    rows = [[f"`{e}`", cell(vb.get(e)), cell(va.get(e))] for e in exprs]
    rows.append(["**run verdict**", overall(cmp.before), overall(cmp.after)])
    return ["## SLOs", "", *table(["SLO", "before", "after"], rows)]


def _plots_section(plots: Sequence[Plot], report_dir: Path) -> list[str]:
    lines = ["## Plots", ""]
    for plot in plots:
        png, svg = (os.path.relpath(p, report_dir) for p in (plot.png, plot.svg))
        lines += [f"### {plot.title}", "", f"![{plot.title}]({png})", "", f"[SVG]({svg})", ""]
    return lines[:-1]


def render_report(cmp: Comparison, *, plots: Sequence[Plot], report_path: Path,
                  commands: Sequence[str], notes: Sequence[str] = (),
                  verdicts: Sequence[Verdict] = ()) -> str:
    called = [r for r in cmp.rows if r.significant]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# Performance report: `{cmp.before.name}` -> `{cmp.after.name}`", "",
             f"Generated by `trade-ops report perf` on {now}.", ""]
    if cmp.forced_over:
        lines += ["> **Compared with --force** although these runs differ:",
                  *[f"> - {reason}" for reason in cmp.forced_over], ""]
    if cmp.warnings:
        lines += ["> **Conditions**:", *[f"> - {w}" for w in cmp.warnings], ""]
    lines += ["## Summary", ""]
    if called:
        lines += [f"- **{r.sentence()}** ({r.significance.describe()})" for r in called]
    inconclusive = [f"{r.metric.label} ({r.change_text()}, between {r.significance.interval_text()})"
                    if r.significance.interval_text() else r.metric.label
                    for r in cmp.rows if r.call == "inconclusive"]
    untested = [r.metric.label for r in cmp.rows if r.call == "untested"]
    if not called and not inconclusive:
        lines.append(f"- {NO_CHANGE} in any metric tested (minimum effect {cmp.min_effect * 100:g}%).")
    elif not called:
        lines.append("- No change called.")
    if inconclusive:
        lines.append("- **Inconclusive** (the data allow no change and a larger one): "
                     f"{', '.join(inconclusive)}; save both sides with --repeat 5 to tell.")
    if untested:
        lines.append(f"- Not enough data to call a change: {', '.join(untested)}.")
    if verdicts:
        lines += ["", "Expectations (`--expect`):", ""]
        lines += [f"- {'met' if v.met else '**NOT MET**'}: `{v.expectation.describe()}`: {v.detail}"
                  for v in verdicts]
    lines += ["", *_results_section(cmp), "", *_slo_section(cmp), "", *_runs_section(cmp), "",
              *_plots_section(plots, report_path.parent), "", "## How this report was produced", ""]
    lines += [*notes, ""] if notes else []
    lines += ["```sh", *commands, "```", ""]
    return "\n".join(lines)
