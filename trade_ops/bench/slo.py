"""Service level objectives: small expressions checked against a bench result.

    p50<5ms  p99<=100ms  p99.9<200ms  p999<1s  max<2s  mean<50ms   corrected latency
    service.p99<10ms                                              service time instead
    errors<0.1%  errors==0  errors<5                              error rate or count
    rejections<1%                                                 risk rejections
    rate>=1000/s                                                  achieved throughput

A latency needs a unit (us, ms, s); a rate needs `/s`. A bad expression raises
UsageError saying what was expected.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from trade_ops.errors import UsageError
from trade_ops.savedruns import BenchResult, SloResult

__all__ = ["Slo", "evaluate", "parse_slo", "parse_slos"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt,
}
_EXPR = re.compile(r"^\s*([A-Za-z_][\w.]*?)\s*(<=|>=|==|<|>)\s*([0-9]*\.?[0-9]+)\s*([A-Za-z%/]*)\s*$")
_TIME_UNITS = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0}
_PCT = re.compile(r"^p(\d+(?:\.\d+)?)$")
_KNOWN = "p50, p90, p99, p99.9 (or p999), max, mean (optionally service.*), errors, rejections, rate"


@dataclass(frozen=True)
class Slo:
    expr: str
    metric: str  # latency_ms.p99, service_time_ms.mean, errors, rejections, rate
    op: str
    threshold: float  # ms for latencies, a fraction for %, a count otherwise, req/s for rate
    percent: bool = False

    def observe(self, result: BenchResult) -> tuple[float, str]:
        """The observed value (in the threshold's unit) and how to show it."""
        if self.metric in ("errors", "rejections"):
            count = float(getattr(result, self.metric))
            if self.percent:
                frac = count / result.requests if result.requests else (1.0 if count else 0.0)
                return frac, f"{self.metric}={frac * 100:.3g}% ({int(count)})"
            return count, f"{self.metric}={int(count)}"
        if self.metric == "rate":
            return float(result.rate), f"rate={result.rate:.1f}/s"
        group, key = self.metric.split(".")  # latency_ms.p99: a Latency's field
        value = float(getattr(getattr(result, group), key))
        prefix = "service." if group == "service_time_ms" else ""
        return value, f"{prefix}{key}={value:.3f}ms"

    def check(self, result: BenchResult) -> SloResult:
        value, shown = self.observe(result)
        return SloResult(expr=self.expr, passed=bool(_OPS[self.op](value, self.threshold)), observed=shown)


def _latency_metric(name: str, expr: str) -> str:
    group = "latency_ms"
    if name.startswith("service."):
        group, name = "service_time_ms", name.removeprefix("service.")
    elif name.startswith("latency."):
        name = name.removeprefix("latency.")
    if name in ("mean", "max"):
        return f"{group}.{name}"
    m = _PCT.match(name)
    if not m:
        raise UsageError(f"SLO {expr!r}: unknown metric {name!r}; known: {_KNOWN}")
    key = {"50": "p50", "90": "p90", "99": "p99", "99.9": "p999", "999": "p999"}.get(m.group(1))
    if key is None:
        raise UsageError(f"SLO {expr!r}: percentile p{m.group(1)} is not reported; "
                         "use p50, p90, p99 or p99.9")
    return f"{group}.{key}"


def parse_slo(expr: str) -> Slo:
    m = _EXPR.match(expr)
    if not m:
        raise UsageError(f"SLO {expr!r} is not an expression like 'p99<100ms', 'errors<0.1%' or "
                         f"'rate>=1000/s'")
    name, op, number, unit = m.group(1).lower(), m.group(2), float(m.group(3)), m.group(4)
    if name in ("errors", "rejections"):
        if unit == "%":
            return Slo(expr, name, op, number / 100.0, percent=True)
        if unit:
            raise UsageError(f"SLO {expr!r}: {name} takes a count or a percentage, not {unit!r}")
        return Slo(expr, name, op, number)
    if name == "rate":
        if unit not in ("/s", "rps"):
            raise UsageError(f"SLO {expr!r}: a rate needs the unit '/s' (e.g. 'rate>=1000/s')")
        return Slo(expr, "rate", op, number)
    metric = _latency_metric(name, expr)
    if unit not in _TIME_UNITS:
        raise UsageError(f"SLO {expr!r}: a latency needs a unit: us, ms or s (e.g. 'p99<100ms')")
    return Slo(expr, metric, op, number * _TIME_UNITS[unit])


def parse_slos(exprs: list[str]) -> list[Slo]:
    seen: dict[str, Slo] = {}
    for e in exprs:
        slo = parse_slo(e)
        seen.setdefault(slo.expr.replace(" ", ""), slo)
    return list(seen.values())


def evaluate(slos: list[Slo], result: BenchResult) -> list[SloResult]:
    return [s.check(result) for s in slos]
