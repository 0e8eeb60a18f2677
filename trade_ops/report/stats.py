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
the host was busy is followed by another): Mann-Whitney U over them is over-confident, and
called "p50 +18%, significant" between two runs of the same command. So a single-run
comparison is also held to an equivalence margin: the change must be larger than twice the
metric's swing from interval to interval inside either run (the width of the central 80%
of its per-interval values, `within_run_margin`), and at least SINGLE_RUN_MIN_MARGIN.
Measured on real processes (tests/test_report_aa_real.py: twenty A/A pairs of short runs
against one service, one after the other), a whole run moves against the next by about
as much as its intervals swing: at once the swing called 4 of 20 pairs changed (p50 -9.9%
against a 9% swing, p90 -5.9% against 4%) on a quiet host, while a real 2x stood far
outside twice it. The drift between a run's two halves, tried first, was smaller still.
The margin is a prior, not a measurement of run-to-run variation (only --repeat measures
that), which is why a single-run report says so and asks for --repeat.

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
           "tail_unsupported", "welch_runs", "within_run_margin"]

ALPHA = 0.05
MIN_RUNS = 2  # per side, for the run-level test
MIN_MARGIN_INTERVALS = 4  # per-interval values a run needs for its within-run spread
MARGIN_FACTOR = 2.0  # single runs: how many within-run spreads a change must exceed
SINGLE_RUN_MIN_MARGIN = 0.10  # ... and never less than this (runs with a very steady inside)
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
    margin: float | None = None  # single runs: the within-run spread a change must exceed (0.4 = 40%)

    def beyond_margin(self, before: float, after: float) -> bool:
        """True when after/before lies beyond the within-run spread (or no margin applies)."""
        if self.margin is None or before <= 0 or after <= 0:
            return True
        return abs(math.log(after / before)) > math.log1p(self.margin)

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
        margin = (f"; single runs: a change must exceed {self.margin * 100:.0f}% (twice the within-run "
                  f"spread, at least {SINGLE_RUN_MIN_MARGIN * 100:g}%)"
                  if self.margin is not None else "")
        return f"Mann-Whitney U {p(raw)} ({intervals}); {p(self.p_value)} Holm-adjusted{margin}"


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


def within_run_margin(runs: Sequence[Sequence[float]]) -> float | None:
    """What a change between single runs must exceed: MARGIN_FACTOR times the widest
    central-80% spread of per-interval values among the runs (10th to 90th percentile, so
    one stalled interval does not set it), on a log scale, and at least
    SINGLE_RUN_MIN_MARGIN; as a share (0.4 = 40%). None when no run has enough positive
    values to say."""
    import numpy as np

    widths = []
    for values in runs:
        logs = np.log([v for v in values if v > 0])
        if len(logs) >= MIN_MARGIN_INTERVALS:
            low, high = np.percentile(logs, [10.0, 90.0])
            widths.append(float(high - low))
    if not widths:
        return None
    return max(math.expm1(MARGIN_FACTOR * max(widths)), SINGLE_RUN_MIN_MARGIN)


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
