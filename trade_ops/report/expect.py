"""`--expect` gates for CI: `5x p50` (p50 at least 5 times better), `20% p99` (p99 at
least 20% better). Better means lower for latencies and the error rate, higher for
throughput. A gate is met only when the change is also significant (a change too small
or too noisy to call meets no gate); a metric no test could cover is judged on its ratio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trade_ops.errors import UsageError
from trade_ops.report.compare import METRICS, Comparison

__all__ = ["Expectation", "Verdict", "check", "parse_expectation"]

_ALIASES = {"p99.9": "p999", "throughput": "throughput", "rate": "throughput", "error-rate": "error_rate",
            "errors": "error_rate", "error_rate": "error_rate"}
_PATTERN = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<kind>x|%)\s+(?P<metric>[\w.\-]+)\s*$", re.I)


@dataclass(frozen=True)
class Expectation:
    text: str
    metric: str  # a compare.METRICS key
    times: float  # required improvement factor: 5x -> 5.0, 20% -> 1/(1-0.2) for latencies

    def describe(self) -> str:
        return self.text.strip()


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    met: bool
    detail: str


def parse_expectation(text: str) -> Expectation:
    keys = [m.key for m in METRICS]
    match = _PATTERN.match(text)
    if not match:
        raise UsageError(f"bad --expect {text!r}: write it as '<N>x <metric>' or '<N>% <metric>'",
                         detail=f"for example '5x p50' or '20% p99'; metrics: {', '.join(keys)}")
    name = match["metric"].lower()
    key = _ALIASES.get(name, name)
    metric = next((m for m in METRICS if m.key == key), None)
    if metric is None:
        raise UsageError(f"bad --expect {text!r}: unknown metric {match['metric']!r}",
                         detail=f"metrics: {', '.join(keys)}")
    amount = float(match["amount"])
    if match["kind"] == "%":
        # 20% better: a latency at most 80% of before; a throughput at least 120% of before
        if metric.lower_is_better and amount >= 100:
            raise UsageError(f"bad --expect {text!r}: a {metric.label} cannot fall by {amount:g}% or more",
                             detail="use a ratio instead, for example '5x p50'")
        times = 1.0 / (1.0 - amount / 100.0) if metric.lower_is_better else 1.0 + amount / 100.0
    else:
        if amount <= 0:
            raise UsageError(f"bad --expect {text!r}: the factor must be greater than 0")
        times = amount
    return Expectation(text, key, times)


def check(comparison: Comparison, expectations: list[Expectation]) -> list[Verdict]:
    verdicts = []
    for exp in expectations:
        row = comparison.row(exp.metric)
        ratio = row.improvement
        if ratio is None:
            verdicts.append(Verdict(exp, False, f"{row.metric.label}: no value to compare"))
            continue
        enough = ratio >= exp.times * (1 - 1e-9)
        if not enough:
            verdicts.append(Verdict(exp, False, f"{row.sentence()} (needed {exp.describe()})"))
        elif row.significant is False:
            verdicts.append(Verdict(exp, False, f"{row.sentence()}, but not significant "
                                                f"({row.significance.describe()})"))
        else:
            verdicts.append(Verdict(exp, True, row.sentence()))
    return verdicts
