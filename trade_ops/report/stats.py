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
comparison is also held to an equivalence margin: the change must be larger than the
metric's swing from interval to interval inside either run (the width of the central 80%
of its per-interval values, `within_run_margin`). Measured on real processes (twenty A/A
pairs of short runs against one service), run-to-run differences stayed inside that swing
while a real 2x stood far outside it; the drift between a run's two halves, tried first,
was smaller than the run-to-run differences and called 2 pairs of 20. The margin is a
prior, not a measurement of run-to-run variation (only --repeat measures that), which is
why a single-run report says so and asks for --repeat.

Many rows. A comparison tests several metrics at once; Holm's step-down procedure keeps
the chance of calling any change between two runs of the same command at ALPHA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["ALPHA", "MIN_RUNS", "Significance", "holm", "mann_whitney", "min_mann_whitney_p", "welch_runs",
           "within_run_margin"]

ALPHA = 0.05
MIN_RUNS = 2  # per side, for the run-level test
MIN_MARGIN_INTERVALS = 4  # per-interval values a run needs for its within-run spread


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
        margin = (f"; single runs: a change must exceed the within-run spread, {self.margin * 100:.0f}%"
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
    """The widest central-80% spread of per-interval values among the runs (10th to 90th
    percentile, so one stalled interval does not set it), as a share of its low end
    (0.4 = 40%); None when no run has enough positive values to say."""
    import numpy as np

    widths = []
    for values in runs:
        logs = np.log([v for v in values if v > 0])
        if len(logs) >= MIN_MARGIN_INTERVALS:
            low, high = np.percentile(logs, [10.0, 90.0])
            widths.append(float(high - low))
    return math.expm1(max(widths)) if widths else None


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
