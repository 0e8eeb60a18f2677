"""`--expect` gates for CI, both ways.

Speed-ups: `5x p50` (p50 at least 5 times better), `20% p99` (p99 at least 20% better).
A speed-up gate is met only when the change is also called (a change too small or too
noisy to call, an inconclusive comparison, meets no gate); a metric no test could cover
is judged on its ratio.

Regressions ("no worse than"): `p99 <= 1.1x` (after at most 1.1 times before),
`throughput >= 0.9x`, or `p99 +10%` / `throughput -10%` (at most 10% worse). Such a gate
is met when the measured change is within the bound, and fails when it is beyond it,
whatever the test says: called significant, the gate failed; inconclusive, untested or
within the comparison's noise, the runs cannot show the change is within the bound, and
the gate says so and asks for runs saved with --repeat, which can. A gate never passes on
a point estimate that breaches it (a 3.83x p99 once met `p99 <= 1.1x` as "not significant").

Better means lower for latencies and the error rate, higher for throughput.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trade_ops.errors import UsageError
from trade_ops.report.compare import METRICS, Comparison, Metric

__all__ = ["REPEAT_HINT", "Expectation", "Verdict", "check", "parse_expectation"]

REPEAT_HINT = ("to tell, save both sides with `trade-ops bench ... --repeat 5 --save NAME` "
               "and compare them again")

_ALIASES = {"p99.9": "p999", "throughput": "throughput", "rate": "throughput", "error-rate": "error_rate",
            "errors": "error_rate", "error_rate": "error_rate"}
_METRIC = r"(?P<metric>[A-Za-z][\w.\-]*)"
_BETTER = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<kind>x|%)\s+" + _METRIC + r"\s*$", re.I)
_BOUND = re.compile(r"^\s*" + _METRIC + r"\s*(?P<op><=|>=)\s*(?P<amount>\d+(?:\.\d+)?)\s*x\s*$", re.I)
_PERCENT = re.compile(r"^\s*" + _METRIC + r"\s+(?P<sign>[+-])\s*(?P<amount>\d+(?:\.\d+)?)\s*%\s*$", re.I)
_FORMS = ("'5x p50' or '20% p99' (at least that much better); 'p99 <= 1.1x', 'throughput >= 0.9x', "
          "'p99 +10%' or 'throughput -10%' (no worse than that)")


@dataclass(frozen=True)
class Expectation:
    text: str
    metric: str  # a compare.METRICS key
    times: float  # better: the improvement factor needed; no worse: the worst after/before allowed
    no_worse: bool = False

    def describe(self) -> str:
        return self.text.strip()


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    met: bool
    detail: str


def _metric(text: str, name: str) -> Metric:
    key = _ALIASES.get(name.lower(), name.lower())
    metric = next((m for m in METRICS if m.key == key), None)
    if metric is None:
        raise UsageError(f"bad --expect {text!r}: unknown metric {name!r}",
                         detail=f"metrics: {', '.join(m.key for m in METRICS)}")
    return metric


def parse_expectation(text: str) -> Expectation:
    if m := _BOUND.match(text):
        metric, amount = _metric(text, m["metric"]), float(m["amount"])
        if amount <= 0:
            raise UsageError(f"bad --expect {text!r}: the factor must be greater than 0")
        if (m["op"] == "<=") != metric.lower_is_better:
            want = "<=" if metric.lower_is_better else ">="
            raise UsageError(f"bad --expect {text!r}: for {metric.label}, 'no worse than' is written {want}",
                             detail=f"for example '{metric.key} {want} {1.1 if want == '<=' else 0.9}x'")
        return Expectation(text, metric.key, amount, no_worse=True)
    if m := _PERCENT.match(text):
        metric, amount = _metric(text, m["metric"]), float(m["amount"])
        worse_sign = "+" if metric.lower_is_better else "-"
        if m["sign"] != worse_sign or (worse_sign == "-" and amount >= 100):
            raise UsageError(f"bad --expect {text!r}: for {metric.label}, 'at most N% worse' is written "
                             f"'{metric.key} {worse_sign}N%'")
        limit = 1 + amount / 100 if metric.lower_is_better else 1 - amount / 100
        return Expectation(text, metric.key, limit, no_worse=True)
    match = _BETTER.match(text)
    if not match:
        raise UsageError(f"bad --expect {text!r}", detail=f"forms: {_FORMS}; "
                                                          f"metrics: {', '.join(m.key for m in METRICS)}")
    metric = _metric(text, match["metric"])
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
    return Expectation(text, metric.key, times)


def _no_worse(comparison: Comparison, exp: Expectation) -> Verdict:
    row = comparison.row(exp.metric)
    if row.before is None or row.after is None or row.before == 0:
        return Verdict(exp, False, f"{row.metric.label}: no value to compare")
    ratio = row.after / row.before
    within = ratio <= exp.times if row.metric.lower_is_better else ratio >= exp.times
    if within:
        return Verdict(exp, True, f"{row.sentence()} (within {exp.describe()})")
    if row.call == "changed":
        return Verdict(exp, False, f"{row.sentence()}: worse than {exp.describe()}, significant "
                                   f"({row.significance.describe()})")
    why = {"untested": "no test could run", "inconclusive": "the comparison is inconclusive",
           "unchanged": "within the noise of these runs, which is wider than the bound"}[row.call]
    between = row.significance.interval_text()
    return Verdict(exp, False, f"{row.sentence()}: worse than {exp.describe()}, and {why}"
                               + (f" (the change lies in {between})" if between else "")
                               + f" ({row.significance.describe()}); {REPEAT_HINT}")


def check(comparison: Comparison, expectations: list[Expectation]) -> list[Verdict]:
    verdicts = []
    for exp in expectations:
        if exp.no_worse:
            verdicts.append(_no_worse(comparison, exp))
            continue
        row = comparison.row(exp.metric)
        ratio = row.improvement
        if ratio is None:
            verdicts.append(Verdict(exp, False, f"{row.metric.label}: no value to compare"))
            continue
        enough = ratio >= exp.times * (1 - 1e-9)
        if not enough:
            verdicts.append(Verdict(exp, False, f"{row.sentence()} (needed {exp.describe()})"))
        elif row.call in ("unchanged", "inconclusive"):
            verdicts.append(Verdict(exp, False, f"{row.sentence()}, but not called a change: {row.verdict()} "
                                                f"({row.significance.describe()}); {REPEAT_HINT}"))
        else:
            verdicts.append(Verdict(exp, True, row.sentence()))
    return verdicts
