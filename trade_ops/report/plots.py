"""The report's pictures, written as SVG and PNG (matplotlib, Agg backend).

- percentile distribution: latency against percentile on the usual log "1/(1-p)" axis
  (0%, 90%, 99%, 99.9%, ...), both runs on one chart;
- latency over time, one chart per run, from the per-interval histograms, with the
  throughput and errors of each interval below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trade_ops.report.compare import format_value
from trade_ops.report.runs import Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Plot", "run_plots", "write_plots"]

COLORS = {"before": "#d95f02", "after": "#1b6ca8"}
LINES = (("p50", 50.0, "-"), ("p90", 90.0, "--"), ("p99", 99.0, "-."), ("max", None, ":"))


@dataclass(frozen=True)
class Plot:
    title: str
    png: Path
    svg: Path


def _figure(rows: int = 1, heights: tuple[int, ...] = (1,)) -> tuple[Figure, list[Axes]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 13, "axes.titleweight": "bold",
                         "svg.fonttype": "none", "svg.hashsalt": "trade-ops"})
    fig, axes = plt.subplots(rows, 1, figsize=(10, 5.6 if rows == 1 else 6.4), sharex=rows > 1,
                             gridspec_kw={"height_ratios": list(heights)}, squeeze=False)
    return fig, [ax for (ax,) in axes]


def _save(fig: Figure, base: Path, title: str) -> Plot:
    from matplotlib import pyplot as plt

    fig.tight_layout()
    png, svg = base.with_suffix(".png"), base.with_suffix(".svg")
    fig.savefig(png, dpi=110)
    fig.savefig(svg, metadata={"Date": None})  # no date: the same runs give the same file
    plt.close(fig)
    return Plot(title, png, svg)


def _percentile_curve(run: Run) -> tuple[list[float], list[float]]:
    import numpy as np

    dist = run.latency
    total = dist.total
    if total == 0:
        return [], []
    nines = np.linspace(0.0, np.log10(max(total, 10)), 240)  # up to 1 - 1/n: what n requests can tell
    xs = 10.0 ** nines
    ys = [dist.percentile(100.0 * (1.0 - 1.0 / x)) for x in xs]
    return [*xs.tolist(), float(xs[-1])], [*ys, dist.max()]


def _log_scale_if_wide(ax: Axes, low: float, high: float) -> bool:
    """A log latency axis when the runs differ by orders of magnitude, else linear from 0."""
    if low > 0 and high / low > 30:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        return True
    ax.set_ylim(bottom=0, top=high * 1.1)
    return False


def percentile_plot(runs: Sequence[tuple[str, Run]], base: Path) -> Plot:
    """Each (label, run) as a curve: label "before" or "after" (its colour)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    fig, (ax,) = _figure()
    medians: list[float] = []
    tops: list[float] = []
    max_x = 10.0
    for label, run in runs:
        xs, ys = _percentile_curve(run)
        if not xs:
            continue
        medians.append(run.latency.percentile(50))
        tops.append(max(ys))
        max_x = max(max_x, xs[-1])
        legend = f"{label}: {run.name} (p99 {format_value(run.results.latency_ms.p99, 'ms')})"
        ax.plot(xs, ys, color=COLORS[label], linewidth=2.2, label=legend)
    ax.set_xscale("log")
    ticks = [10.0 ** k for k in range(0, 7) if 10.0 ** k <= max_x * 1.01]
    names = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels(names[: len(ticks)])
    ax.set_xlim(1, max_x * 1.05)
    if tops:
        _log_scale_if_wide(ax, min(medians), max(tops))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms, corrected for coordinated omission)")
    ax.set_title("Latency by percentile" + (": before vs after" if len(runs) > 1 else f": {runs[0][1].name}"))
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(loc="upper left", frameon=True)
    return _save(fig, base, "Latency by percentile")


def timeline_plot(run: Run, label: str, base: Path, ylim: tuple[float, float] | None,
                  log: bool) -> Plot | None:
    intervals = run.intervals
    if not intervals:
        return None
    fig, (ax, bottom) = _figure(2, (3, 1))
    mids = [iv.mid_s for iv in intervals]
    for name, pct, style in LINES:
        ys = [(iv.latency.percentile(pct) if pct is not None else iv.latency.max())
              if iv.latency.total else float("nan") for iv in intervals]
        ax.plot(mids, ys, style, color=COLORS[label], linewidth=1.8, marker="o" if len(mids) < 40 else None,
                markersize=3, label=name, alpha=1.0 if name in ("p50", "p99") else 0.75)
    if ylim:
        if log:
            _log_scale_if_wide(ax, *ylim)
        ax.set_ylim(*ylim)
    ax.set_ylabel("latency (ms)")
    overload = run.results.overload
    ax.set_title(f"Latency over time ({label}): {run.name}" + ("  [OVERLOADED]" if overload else ""),
                 color="#c0392b" if overload else "black")
    ax.grid(True, alpha=0.35)
    ax.legend(loc="upper right", ncol=4, frameon=True)
    widths = [max(iv.end_s - iv.start_s, 1e-9) * 0.9 for iv in intervals]
    bottom.bar(mids, [iv.rate for iv in intervals], width=widths, color=COLORS[label], alpha=0.45,
               label="req/s")
    errs = [iv.errors / max(iv.end_s - iv.start_s, 1e-9) for iv in intervals]
    if any(errs):
        bottom.bar(mids, errs, width=widths, color="#c0392b", label="errors/s")
    target = run.results.target_rate
    if target:  # what was asked, against what came back
        bottom.axhline(float(target), color="#555555", linestyle="--", linewidth=1.2,
                       label=f"asked {float(target):,.4g}/s")
    bottom.set_ylabel("answers/s")
    bottom.set_xlabel("time since start of measurement (s)")
    bottom.grid(True, alpha=0.35)
    bottom.legend(loc="lower right", ncol=2, frameon=True, fontsize=9)
    return _save(fig, base, f"Latency over time ({label})")


def _timeline_limits(runs: Sequence[Run]) -> tuple[tuple[float, float] | None, bool]:
    """One y-range for both timelines, so the eye can compare them."""
    tops, lows = [], []
    for run in runs:
        for iv in run.intervals:
            if iv.latency.total:
                tops.append(iv.latency.max())
                lows.append(iv.latency.percentile(50))
    if not tops:
        return None, False
    top, low = max(tops), min(lows)
    if low > 0 and top / low > 30:
        return (low / 1.5, top * 4), True  # headroom for the legend
    return (0.0, top * 1.3), False  # headroom for the legend


def write_plots(before: Run, after: Run, out_dir: Path, stem: str) -> list[Plot]:
    """Write every plot into out_dir as STEM-NAME.svg and .png; return them in report order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [percentile_plot((("before", before), ("after", after)), out_dir / f"{stem}-percentiles")]
    ylim, log = _timeline_limits((before, after))
    for label, run in (("before", before), ("after", after)):
        plot = timeline_plot(run, label, out_dir / f"{stem}-timeline-{label}", ylim, log)
        if plot is not None:
            plots.append(plot)
    return plots


def run_plots(run: Run, out_dir: Path, stem: str) -> list[Plot]:
    """One run's plots (bench --html): its percentile distribution and its latency over time."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [percentile_plot((("after", run),), out_dir / f"{stem}-percentiles")]
    ylim, log = _timeline_limits((run,))
    timeline = timeline_plot(run, "after", out_dir / f"{stem}-timeline", ylim, log)
    return plots + ([timeline] if timeline else [])
