"""Is a difference between two runs real? Two-sided tests that refuse to cry wolf.

Intervals. Each run records one histogram per interval (a second by default); a partial
interval (the schedule ended inside it) is dropped. Mann-Whitney U over the per-interval
values (per-second p50s, p99s, ...) assumes no shape. With n and m intervals its smallest
possible p-value is 2 / C(n+m, n): when that cannot fall below the level a row is tested
at, the row says "not enough data" instead of a verdict (5 vs 5 intervals can never give
less than p=0.0079, which is why such a result meant nothing).

Runs. Intervals of one run share that run's conditions (what else the host was doing), so
two runs of the same command differ by more than their intervals do. With `--repeat`,
each side holds several runs, and a change is called only when the runs differ too:
Welch's t-test over the per-run values, on a log scale (latencies change by factors), as
pyperf compares values across runs and benchstat compares runs.

One run each. With no repeats, nothing measures how much two runs of the same command
differ, and the intervals of one run are not independent (a second that was slow because
the host was busy is followed by another): a test over them with no allowance is
over-confident, and called "p50 +18%, significant" between two runs of the same command.
So a single-run comparison allows a drift between runs, a margin: twice the metric's swing
from interval to interval inside the *steadier* run (the width of the central 80% of its
per-interval values, `single_run_margin`), at least SINGLE_RUN_MIN_MARGIN and at most
SINGLE_RUN_MAX_MARGIN. Measured on real processes (tests/test_report_aa_real.py: twenty A/A
pairs of short runs against one service), a whole run moves against the next by about as
much as its intervals swing (p50 -9.9% against a 9% swing). The margin is then tested, not
compared with a point estimate: Mann-Whitney U asks whether the after run's values, moved
back by the margin, still lie above (or below) the before run's (`shifted_mann_whitney`),
so a noisy run widens the test's own uncertainty, never the margin. The margin once came
from the noisier run, and a regression that made its run noisy swallowed itself: p90 +397%
with p < 0.0001 was "no significant change" against a 407% margin. The steadier run is the
one that shows how far two runs of the command drift; the other run's extra swing is part
of what changed. The cap says what single runs assume: runs of one command do not drift
by more than SINGLE_RUN_MAX_MARGIN (a 2x change is always beyond it); only --repeat
measures run-to-run variation, which is why a single-run report says so and asks for it.

Three answers. A change is called when the test says the change exceeds the margin at the
level; "no significant change" when the change's confidence interval (Hodges-Lehmann's over
the intervals, Welch's over repeated runs; at ALPHA / rows, Holm's first step, so it agrees
with what the rows can call) lies within the equivalence bound (the margin, at least the
minimum effect); "inconclusive" when it does neither: the data allow both no change and a
change larger than the bound, and the row says between what.

Tails of single runs. An interval's p99 is meaningful only when the interval holds enough
requests beyond it (TAIL_SUPPORT): of 20 requests, its p99, p99.9 and max are all its
slowest request, and between two single runs the slowest requests moved by 20-56% (beyond
twice the margin) in 2-3 of 20 real A/A pairs. So with one run each, a percentile is
tested only when a typical interval holds TAIL_SUPPORT requests beyond it (p99: 200,
p99.9: 2000), and the max (one request) never is; those rows say "not enough data" and why. With --repeat each
run's own figure is compared across runs, which a run's thousands of requests support.

Many rows. A comparison tests several metrics at once; Holm's step-down procedure keeps
the chance of calling any change between two runs of the same command at ALPHA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["ALPHA", "MIN_RUNS", "Significance", "holm", "mann_whitney", "min_mann_whitney_p",
           "shift_interval", "shifted_mann_whitney", "single_run_margin", "tail_unsupported",
           "welch_interval", "welch_runs"]

ALPHA = 0.05
MIN_RUNS = 2  # per side, for the run-level test
MIN_MARGIN_INTERVALS = 4  # per-interval values a run needs for its within-run spread
MARGIN_FACTOR = 2.0  # single runs: how many within-run spreads (of the steadier run) two runs may drift
SINGLE_RUN_MIN_MARGIN = 0.10  # ... and never less than this (runs with a very steady inside)
SINGLE_RUN_MAX_MARGIN = 0.50  # ... nor more: what single runs assume of run-to-run drift
TAIL_SUPPORT = 2  # single runs: requests an interval must hold beyond a percentile to test it


@dataclass(frozen=True)
class Significance:
    test: str  # "Mann-Whitney U", "Welch t (runs) + Mann-Whitney U", or "none"
    p_value: float | None  # the p-value that decides (the larger of the two when both run)
    n_before: int = 0
    n_after: int = 0
    note: str = ""
    level: float = ALPHA  # p_value is Holm-adjusted once holm() has run
    runs: tuple[int, int] | None = None  # runs per side when the run-level test ran
    p_runs: float | None = None
    p_intervals: float | None = None
    margin: float | None = None  # single runs: the drift allowed between runs (0.4 = 40%), tested
    # the change's confidence interval, after/before (1.2 = +20%); None when it cannot be said
    interval: tuple[float, float] | None = None

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else self.p_value < self.level

    def describe(self) -> str:
        if self.p_value is None:
            return self.note or "not tested"

        def p(v: float) -> str:
            return f"p={v:.2g}" if v >= 1e-4 else "p<0.0001"

        intervals = f"{self.n_before}/{self.n_after} intervals"
        if self.runs is not None and self.p_runs is not None and self.p_intervals is not None:
            runs = f"{self.runs[0]}/{self.runs[1]} runs"
            return (f"Welch t over runs {p(self.p_runs)} ({runs}), Mann-Whitney U {p(self.p_intervals)} "
                    f"({intervals}); {p(self.p_value)} Holm-adjusted")
        raw = self.p_intervals if self.p_intervals is not None else self.p_value
        margin = (f" beyond a {self.margin * 100:.0f}% single-run margin (twice the steadier run's "
                  f"within-run spread, {SINGLE_RUN_MIN_MARGIN * 100:g}-{SINGLE_RUN_MAX_MARGIN * 100:g}%)"
                  if self.margin is not None else "")
        return f"Mann-Whitney U{margin} {p(raw)} ({intervals}); {p(self.p_value)} Holm-adjusted"

    def interval_text(self) -> str:
        """`-3%..+25%`: the change's confidence interval, or '' when there is none."""
        if self.interval is None:
            return ""
        low, high = self.interval
        return f"{(low - 1) * 100:+.0f}%..{(high - 1) * 100:+.0f}%"


def min_mann_whitney_p(n: int, m: int) -> float:
    """The smallest two-sided p-value Mann-Whitney U can give with n and m values."""
    return 1.0 if min(n, m) == 0 else min(1.0, 2.0 / math.comb(n + m, n))


def mann_whitney(before: Sequence[float], after: Sequence[float], level: float = ALPHA) -> Significance:
    n, m = len(before), len(after)
    floor = min_mann_whitney_p(n, m)
    if floor >= level:
        return Significance("none", None, n, m, level=level,
                            note=f"not enough data: {n}/{m} full intervals cannot reach p<{level:.2g} "
                                 f"(the smallest possible p is {floor:.2g}); measure longer")
    from scipy.stats import mannwhitneyu

    if len(set(before) | set(after)) == 1:  # all equal: nothing to test, and scipy warns
        return Significance("Mann-Whitney U", 1.0, n, m, level=level, p_intervals=1.0)
    p = float(mannwhitneyu(list(before), list(after), alternative="two-sided").pvalue)
    return Significance("Mann-Whitney U", p, n, m, level=level, p_intervals=p)


def welch_runs(before: Sequence[float], after: Sequence[float]) -> float | None:
    """Welch's t-test over per-run values on a log scale; None when it cannot run."""
    if min(len(before), len(after)) < MIN_RUNS or min(*before, *after) <= 0:
        return None
    lb, la = [math.log(v) for v in before], [math.log(v) for v in after]
    if len(set(lb)) == 1 and len(set(la)) == 1:
        return 1.0 if lb[0] == la[0] else 0.0
    from scipy.stats import ttest_ind

    p = float(ttest_ind(lb, la, equal_var=False).pvalue)
    return 1.0 if math.isnan(p) else p


def _width(values: Sequence[float]) -> float | None:
    """The central-80% spread of positive values on a log scale (10th to 90th percentile,
    so one stalled interval does not set it); None with too few values."""
    import numpy as np

    logs = np.log([v for v in values if v > 0])
    if len(logs) < MIN_MARGIN_INTERVALS:
        return None
    low, high = np.percentile(logs, [10.0, 90.0])
    return float(high - low)


def single_run_margin(runs: Sequence[Sequence[float]]) -> float | None:
    """The drift allowed between two single runs: MARGIN_FACTOR times the steadier run's
    within-run spread, within [SINGLE_RUN_MIN_MARGIN, SINGLE_RUN_MAX_MARGIN]; as a share
    (0.4 = 40%). None when no run has enough positive values to say."""
    widths = [w for w in map(_width, runs) if w is not None]
    if not widths:
        return None
    margin = math.expm1(MARGIN_FACTOR * min(widths))
    return min(max(margin, SINGLE_RUN_MIN_MARGIN), SINGLE_RUN_MAX_MARGIN)


def shifted_mann_whitney(before: Sequence[float], after: Sequence[float], margin: float,
                         level: float = ALPHA) -> Significance:
    """Two one-sided Mann-Whitney U tests of 'after differs from before by more than the
    margin' (factors, on a log scale): the after values moved back by the margin must still
    lie above (or, moved up, below) the before values. p is twice the smaller one-sided p,
    so a margin of 0 is the two-sided test. Positive values only."""
    base = mann_whitney(before, after, level=level)
    if base.p_value is None:
        return base
    from scipy.stats import mannwhitneyu

    lb = [math.log(v) for v in before]
    la = [math.log(v) for v in after]
    shift = math.log1p(margin)
    worse = float(mannwhitneyu([v - shift for v in la], lb, alternative="greater").pvalue)
    better = float(mannwhitneyu([v + shift for v in la], lb, alternative="less").pvalue)
    p = min(1.0, 2.0 * min(worse, better))
    return replace(base, test="Mann-Whitney U", p_value=p, p_intervals=p, margin=margin)


def shift_interval(before: Sequence[float], after: Sequence[float],
                   level: float = ALPHA) -> tuple[float, float] | None:
    """Hodges-Lehmann's distribution-free confidence interval (1 - level) of the factor
    after/before, from the pairwise log differences; None with too few values (or any not
    positive)."""
    import numpy as np
    from scipy.stats import norm

    n, m = len(before), len(after)
    if min(n, m) == 0 or min(*before, *after) <= 0:
        return None
    diffs = np.sort(np.subtract.outer(np.log(after), np.log(before)).ravel())
    k = math.floor(n * m / 2.0 - float(norm.ppf(1 - level / 2)) * math.sqrt(n * m * (n + m + 1) / 12.0))
    if k < 1:
        return None
    return float(math.exp(diffs[k - 1])), float(math.exp(diffs[n * m - k]))


def welch_interval(before: Sequence[float], after: Sequence[float],
                   level: float = ALPHA) -> tuple[float, float] | None:
    """Welch's confidence interval (1 - level) of the factor after/before over per-run
    values (log scale); None when it cannot be said."""
    if min(len(before), len(after)) < MIN_RUNS or min(*before, *after) <= 0:
        return None
    import numpy as np
    from scipy.stats import t

    lb, la = np.log(before), np.log(after)
    vb, va = float(np.var(lb, ddof=1)) / len(lb), float(np.var(la, ddof=1)) / len(la)
    diff = float(np.mean(la) - np.mean(lb))
    if vb + va == 0:
        return math.exp(diff), math.exp(diff)
    dof = (vb + va) ** 2 / ((vb ** 2 / (len(lb) - 1)) + (va ** 2 / (len(la) - 1)))
    half = float(t.ppf(1 - level / 2, dof)) * math.sqrt(vb + va)
    return math.exp(diff - half), math.exp(diff + half)


def tail_unsupported(percentile: float | None, counts: Sequence[int]) -> str | None:
    """Why a single-run comparison cannot test this percentile over intervals holding
    `counts` requests (percentile None: the max), or None when it can."""
    typical = sorted(counts)[len(counts) // 2] if counts else 0
    if percentile is None:
        return ("not enough data: an interval's max is one request, and single runs do not say how "
                "much it moves from run to run; compare with --repeat")
    needed = math.ceil(TAIL_SUPPORT / (1.0 - percentile / 100.0) - 1e-9)
    if typical >= needed:
        return None
    return (f"not enough data: an interval holds ~{typical} requests, and its p{percentile:g} needs "
            f"{needed} to be more than its slowest request or two; use longer intervals or --repeat")


def holm(tests: list[Significance], alpha: float = ALPHA) -> list[Significance]:
    """Holm's step-down over the tested rows: each gets its adjusted p-value as `p_value`
    (the raw one stays in p_runs/p_intervals), so `p_value < alpha` decides every row."""
    tested = sorted((i for i, t in enumerate(tests) if t.p_value is not None),
                    key=lambda i: tests[i].p_value or 0.0)
    out, m, running = list(tests), len(tested), 0.0
    for k, i in enumerate(tested):
        running = max(running, min(1.0, (m - k) * (tests[i].p_value or 0.0)))
        out[i] = replace(tests[i], p_value=running, level=alpha)
    return out
