"""Compare two saved runs: refuse incomparable ones, then one row per metric.

Each row gives one of four answers (stats.py says how each is reached):

    better / WORSE              the change is significant (stats.ALPHA, Holm-adjusted over
                                the rows), at least the minimum effect and, for single runs,
                                beyond the drift allowed between runs (tested, not compared)
    ~ no significant change     the change's confidence interval lies within the bound
    ? inconclusive              neither: the data allow no change and a change beyond the bound
    ? not enough data           no test can run (too few intervals, a tail they cannot estimate)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from trade_ops.errors import UsageError
from trade_ops.report import stats
from trade_ops.report.dist import Dist
from trade_ops.report.runs import Run
from trade_ops.savedruns import Interval

__all__ = ["COMPARED_SETTINGS", "DEFAULT_MIN_EFFECT", "INCONCLUSIVE", "METRICS", "NOT_ENOUGH", "NO_CHANGE",
           "Comparison", "Metric", "Row", "compare_runs", "condition_warnings", "format_value",
           "incompatibilities"]

DEFAULT_MIN_EFFECT = 0.05
NO_CHANGE = "~ no significant change"
NOT_ENOUGH = "? not enough data"
INCONCLUSIVE = "? inconclusive"
COMPARED_SETTINGS = ("target", "model", "rate", "duration_s", "concurrency", "requests", "warmup", "repeat")


@dataclass(frozen=True)
class Metric:
    key: str  # as written in --expect and in results.latency_ms
    label: str
    unit: str  # "ms", "req/s" or "ratio"
    lower_is_better: bool
    percentile: float | None = None

    def overall(self, run: Run) -> float | None:
        res = run.results
        if self.unit == "ms":
            return float(getattr(res.latency_ms, self.key))
        requests = float(res.requests)
        if self.key == "throughput":
            if res.rate:
                return float(res.rate)
            return requests / res.duration_s if res.duration_s > 0 else None
        return res.errors / requests if requests else None

    def per_interval(self, interval: Interval[Dist]) -> float | None:
        if self.key == "throughput":
            return interval.rate
        if interval.count == 0:
            return None
        if self.key == "error_rate":
            return interval.errors / interval.count
        dist = interval.latency
        if dist.total == 0:
            return None
        if self.percentile is not None:
            return dist.percentile(self.percentile)
        return dist.max() if self.key == "max" else dist.mean()


METRICS: tuple[Metric, ...] = (
    Metric("p50", "p50", "ms", True, 50.0),
    Metric("p90", "p90", "ms", True, 90.0),
    Metric("p99", "p99", "ms", True, 99.0),
    Metric("p999", "p99.9", "ms", True, 99.9),
    Metric("max", "max", "ms", True),
    Metric("mean", "mean", "ms", True),
    Metric("throughput", "throughput", "req/s", False),
    Metric("error_rate", "error rate", "ratio", True),
)


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "req/s":
        return f"{value:,.1f} req/s"
    if value >= 1000:
        return f"{value / 1000:.3g} s"
    return f"{value:.3g} ms"


@dataclass(frozen=True)
class Row:
    metric: Metric
    before: float | None
    after: float | None
    significance: stats.Significance
    min_effect: float

    @property
    def change(self) -> float | None:
        """Relative change, after against before (-0.5 is half); None when undefined."""
        if self.before is None or self.after is None or self.before == 0:
            return None
        return self.after / self.before - 1.0

    @property
    def improvement(self) -> float | None:
        """How many times better: before/after when lower is better, after/before otherwise."""
        b, a = self.before, self.after
        if b is None or a is None:
            return None
        num, den = (b, a) if self.metric.lower_is_better else (a, b)
        if den == 0:
            return None if num == 0 else float("inf")
        return num / den

    @property
    def window(self) -> tuple[float, float]:
        """The factors after/before within which a change is 'no significant change': the
        minimum effect either way (a relative change, as it is applied), widened to the
        single-run margin (a factor, as it is tested)."""
        margin = self.significance.margin or 0.0
        return min(1.0 - self.min_effect, 1.0 / (1.0 + margin)), max(1.0 + self.min_effect, 1.0 + margin)

    @property
    def call(self) -> str:
        """'changed', 'unchanged', 'inconclusive', or 'untested' (no test could run)."""
        sig = self.significance
        if sig.p_value is None:
            return "untested"
        if self.change is None:  # from zero (error rate 0% -> 2%): the test alone decides
            if self.before == self.after:
                return "unchanged"
            return "changed" if sig.p_value < stats.ALPHA else "inconclusive"
        if sig.p_value < stats.ALPHA and abs(self.change) >= self.min_effect:
            return "changed"  # for single runs the test's hypothesis already holds the margin
        low, high = sig.interval or (0.0, math.inf)
        if self.window[0] <= low and high <= self.window[1]:
            return "unchanged"
        return "inconclusive"

    @property
    def significant(self) -> bool | None:
        """True when a change is called, False when none is (the data show none beyond
        the bound), None when inconclusive or untested."""
        return {"changed": True, "unchanged": False}.get(self.call)

    def ratio_text(self) -> str:
        ratio = self.improvement
        if ratio is None or abs(ratio - 1.0) < 0.005:
            return "="
        if self.metric.unit == "ms":
            words = ("faster", "slower")
        elif self.metric.unit == "req/s":
            words = ("higher", "lower")
        else:
            words = ("fewer", "more")
        better = ratio > 1.0
        times = ratio if better else (1.0 / ratio if ratio else float("inf"))
        amount = "∞" if times == float("inf") else (f"{times:.0f}" if times >= 100 else f"{times:.3g}")
        return f"{amount}x {words[0] if better else words[1]}"

    def change_text(self) -> str:
        if self.change is not None:
            return f"{self.change * 100:+.1f}%"
        if self.metric.unit == "ratio" and self.before is not None and self.after is not None:
            return f"{(self.after - self.before) * 100:+.2f} pp"
        return "n/a"

    def verdict(self) -> str:
        call = self.call
        if call == "unchanged":
            return NO_CHANGE
        if call == "untested":
            return NOT_ENOUGH
        if call == "inconclusive":
            between = self.significance.interval_text()
            return f"{INCONCLUSIVE} ({between})" if between else INCONCLUSIVE
        better = (self.improvement or 1.0) > 1.0
        return f"{'better' if better else 'WORSE'}: {self.ratio_text()}"

    def sentence(self) -> str:
        """`p50: 250 ms -> 0.8 ms, 312x faster`."""
        unit = self.metric.unit
        return (f"{self.metric.label}: {format_value(self.before, unit)} -> "
                f"{format_value(self.after, unit)}, {self.ratio_text()}")


@dataclass
class Comparison:
    before: Run
    after: Run
    rows: list[Row]
    min_effect: float
    forced_over: list[str] = field(default_factory=list)  # incompatibilities overridden by --force
    warnings: list[str] = field(default_factory=list)  # conditions that differ between the runs

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.metric.key == key:
                return row
        raise KeyError(key)


def _describe(value: Any) -> str:
    return "unset" if value is None else repr(value)


def incompatibilities(before: Run, after: Run) -> list[str]:
    """Why these two runs should not be compared; empty when they may be."""
    reasons: list[str] = []
    sb, sa = before.scenario, after.scenario
    if sb.get("name") != sa.get("name"):
        reasons.append(f"different scenarios: {_describe(sb.get('name'))} vs {_describe(sa.get('name'))}")
    elif sb.get("hash") != sa.get("hash"):
        reasons.append(f"scenario {sb.get('name')!r} changed between runs "
                       f"(hash {sb.get('hash')} vs {sa.get('hash')})")
    for key in COMPARED_SETTINGS:
        vb, va = getattr(before.settings, key), getattr(after.settings, key)
        if vb != va:
            reasons.append(f"different settings: {key} {_describe(vb)} vs {_describe(va)}")
    for label, run in (("before", before), ("after", after)):
        if not run.results.valid:
            why = run.results.invalid_reason or "no reason recorded"
            reasons.append(f"the {label} run ({run.name}) is marked invalid: {why}")
    return reasons


def _significance(metric: Metric, before: Run, after: Run, rows: int) -> stats.Significance:
    samples = [[v for v in map(metric.per_interval, run.intervals) if v is not None]
               for run in (before, after)]
    # the smallest possible p must clear Holm's first step (ALPHA / rows), or no row can be called;
    # the change's interval is at that level too, so it agrees with what the rows can call
    level = stats.ALPHA / rows
    tested = stats.mann_whitney(samples[0], samples[1], level=level)
    if tested.p_value is None:
        return tested
    positive = min(*samples[0], *samples[1]) > 0
    if min(len(before.repeats), len(after.repeats)) < stats.MIN_RUNS:
        if metric.unit == "ms" and metric.key != "mean":
            # a tail a single run's intervals cannot estimate (stats.py, "Tails of single runs")
            counts = [iv.count for run in (before, after) for iv in run.intervals]
            why = stats.tail_unsupported(metric.percentile, counts)
            if why is not None:
                return stats.Significance("none", None, tested.n_before, tested.n_after, note=why)
        margin = stats.single_run_margin(samples) if positive else None
        if margin is None:
            return tested
        # one run each: intervals are not independent, so the change is tested against the
        # drift allowed between runs (stats.py says why)
        shifted = stats.shifted_mann_whitney(samples[0], samples[1], margin, level=level)
        return replace(shifted, interval=stats.shift_interval(samples[0], samples[1], level=level))
    per_run = [[v for v in map(metric.overall, run.repeats) if v is not None] for run in (before, after)]
    p_runs = stats.welch_runs(per_run[0], per_run[1])
    if p_runs is None:
        return replace(tested, interval=stats.shift_interval(samples[0], samples[1], level=level)
                       if positive else None)
    return replace(tested, test="Welch t (runs) + Mann-Whitney U", p_value=max(p_runs, tested.p_value),
                   runs=(len(per_run[0]), len(per_run[1])), p_runs=p_runs,
                   interval=stats.welch_interval(per_run[0], per_run[1], level=level))


def _loadavg(run: Run) -> float | None:
    cond = run.results.conditions
    found = [h.loadavg[0] for h in ((cond.before, cond.after) if cond else ()) if h.loadavg]
    return sum(found) / len(found) if found else None


def condition_warnings(before: Run, after: Run) -> list[str]:
    """Differences in the host's conditions that can explain a difference in the figures."""
    out: list[str] = []
    lb, la = _loadavg(before), _loadavg(after)
    if lb is not None and la is not None and abs(lb - la) > max(0.5, 0.3 * max(lb, la)):
        out.append(f"the host was under different load: load average {lb:.2f} during the before run, "
                   f"{la:.2f} during the after run")
    sb, sa = (run.results.conditions.steal_pct if run.results.conditions else None for run in (before, after))
    if sb is not None and sa is not None and abs(sb - sa) > 1.0:
        out.append(f"different CPU steal: {sb:g}% before, {sa:g}% after (a noisy neighbour on the host)")
    if min(len(before.repeats), len(after.repeats)) < stats.MIN_RUNS:
        out.append("single runs: intervals of one run share its conditions, so run-to-run variation is "
                   "not measured; for a verdict that holds across runs, save both sides with --repeat 5")
    return out


def compare_runs(before: Run, after: Run, *, min_effect: float = DEFAULT_MIN_EFFECT,
                 force: bool = False,
                 metrics: tuple[Metric, ...] = METRICS,
                 on_metric: Callable[[Metric], None] | None = None) -> Comparison:
    reasons = incompatibilities(before, after)
    if reasons and not force:
        raise UsageError("refusing to compare these runs: " + "; ".join(reasons),
                         detail="compare runs of one scenario with the same settings, "
                                "or pass --force to compare anyway (the report will say so)")
    tests = []
    for metric in metrics:
        if on_metric:
            on_metric(metric)
        tests.append(_significance(metric, before, after, len(metrics)))
    tests = stats.holm(tests)
    rows = [Row(metric, metric.overall(before), metric.overall(after), sig, min_effect)
            for metric, sig in zip(metrics, tests, strict=True)]
    return Comparison(before, after, rows, min_effect, forced_over=reasons,
                      warnings=condition_warnings(before, after))
