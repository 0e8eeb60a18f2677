"""Is a difference between two runs real? Two tests, both two-sided.

Mann-Whitney U over per-interval values (the bench records one histogram per interval,
so each run gives a sample of, say, per-second p99s): no assumption on the shape of
the distribution, and intervals are far closer to independent than single requests.
It needs MIN_INTERVALS non-empty intervals in each run.

Otherwise a bootstrap over each run's whole latency histogram: resample each run's
requests (a multinomial draw over the histogram's buckets), compute the statistic,
and read a confidence interval and a p-value off the relative changes. Requests of one
run are correlated in time, so this one is optimistic; the minimum effect guards it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trade_ops.report.dist import Dist

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ALPHA", "BOOTSTRAP_RESAMPLES", "MIN_INTERVALS", "Significance", "bootstrap",
           "mann_whitney", "resample"]

ALPHA = 0.05
MIN_INTERVALS = 5
BOOTSTRAP_RESAMPLES = 1000

# statistic over a (resamples x buckets) matrix of counts and the bucket values -> one value per row
Statistic = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class Significance:
    test: str  # "Mann-Whitney U", "bootstrap", or "none" when no test could run
    p_value: float | None
    n_before: int = 0
    n_after: int = 0
    ci: tuple[float, float] | None = None  # bootstrap: 95% CI of the relative change
    note: str = ""

    def describe(self) -> str:
        if self.p_value is None:
            return self.note or "not tested"
        p = f"p={self.p_value:.2g}" if self.p_value >= 1e-4 else "p<0.0001"
        if self.test == "Mann-Whitney U":
            return f"Mann-Whitney U, {p}, {self.n_before}/{self.n_after} intervals"
        lo, hi = self.ci or (0.0, 0.0)
        return f"bootstrap, {p}, 95% CI {lo * 100:+.1f}%..{hi * 100:+.1f}%"


def mann_whitney(before: Sequence[float], after: Sequence[float]) -> Significance:
    if min(len(before), len(after)) < MIN_INTERVALS:
        return Significance("none", None, len(before), len(after),
                            note=f"too few intervals ({len(before)}/{len(after)}, need {MIN_INTERVALS})")
    from scipy.stats import mannwhitneyu

    if len(set(before) | set(after)) == 1:  # all equal: nothing to test, and scipy warns
        return Significance("Mann-Whitney U", 1.0, len(before), len(after))
    result = mannwhitneyu(list(before), list(after), alternative="two-sided")
    return Significance("Mann-Whitney U", float(result.pvalue), len(before), len(after))


def percentile_statistic(percentile: float) -> Statistic:
    import numpy as np

    def stat(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
        cum = np.cumsum(counts, axis=1)
        target = np.ceil(cum[:, -1:] * percentile / 100.0)
        index = np.minimum((cum < np.maximum(target, 1)).sum(axis=1), len(values) - 1)
        return values[index]

    return stat


def mean_statistic(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    return (counts @ values) / counts.sum(axis=1)


def max_statistic(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    import numpy as np

    last = counts.shape[1] - 1 - np.argmax(counts[:, ::-1] > 0, axis=1)
    return values[last]


def resample(dist: Dist, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples x buckets) counts: the run's requests drawn again with replacement."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.multinomial(dist.total, dist.counts / dist.total, size=resamples).astype(float)


def bootstrap(before: Dist, after: Dist, statistic: Statistic,
              draws: tuple[np.ndarray, np.ndarray] | None = None) -> Significance:
    """Draws can be shared between the statistics of one comparison: they do not depend on them."""
    import numpy as np

    n_b, n_a = before.total, after.total
    if min(n_b, n_a) == 0:
        return Significance("none", None, n_b, n_a, note="a run recorded no requests")
    draw_b, draw_a = draws or (resample(before, seed=1), resample(after, seed=2))

    def values(dist: Dist) -> np.ndarray:
        return dist.mids_ms if statistic is mean_statistic else dist.values_ms

    stat_b, stat_a = statistic(draw_b, values(before)), statistic(draw_a, values(after))
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(stat_b > 0, stat_a / stat_b - 1.0, 0.0)
    lo, hi = (float(x) for x in np.percentile(change, [2.5, 97.5]))
    tail = min(float(np.mean(change <= 0)), float(np.mean(change >= 0)))
    p = min(1.0, max(2 * tail, 1.0 / len(change)))
    return Significance("bootstrap", p, int(n_b), int(n_a), ci=(lo, hi))
