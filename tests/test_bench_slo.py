"""SLO expressions parse to the right metric and threshold; bad ones get a clear error."""

from __future__ import annotations

import pytest

from trade_ops.bench.slo import evaluate, parse_slo, parse_slos
from trade_ops.errors import UsageError
from trade_ops.savedruns import BenchResult, Latency

pytestmark = pytest.mark.unit

RESULT = BenchResult(requests=1000, errors=2, rejections=0, rate=998.0,
                     latency_ms=Latency(p50=1.0, p90=2.0, p99=5.0, p999=9.0, max=12.0, mean=1.5),
                     service_time_ms=Latency(p50=0.5, p90=1.0, p99=2.0, p999=3.0, max=4.0, mean=0.7))


@pytest.mark.parametrize(("expr", "metric", "threshold"), [
    ("p99<100ms", "latency_ms.p99", 100.0),
    ("p50 <= 500us", "latency_ms.p50", 0.5),
    ("p99.9<1s", "latency_ms.p999", 1000.0),
    ("p999<1s", "latency_ms.p999", 1000.0),
    ("mean<50ms", "latency_ms.mean", 50.0),
    ("max<2s", "latency_ms.max", 2000.0),
    ("service.p99<10ms", "service_time_ms.p99", 10.0),
    ("errors<0.1%", "errors", 0.001),
    ("errors==0", "errors", 0.0),
    ("rate>=1000/s", "rate", 1000.0),
])
def test_parse(expr: str, metric: str, threshold: float) -> None:
    slo = parse_slo(expr)
    assert slo.metric == metric and slo.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(("expr", "hint"), [
    ("p99", "not an expression"),
    ("p99<100", "needs a unit"),
    ("p99<100kg", "needs a unit"),
    ("p42<1ms", "not reported"),
    ("latencyy<1ms", "unknown metric"),
    ("rate>=1000", "'/s'"),
    ("errors<5ms", "count or a percentage"),
    ("p99 = 3ms", "not an expression"),
])
def test_bad_expressions_say_why(expr: str, hint: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_slo(expr)
    assert hint in info.value.message and expr in info.value.message


def test_evaluate() -> None:
    slos = parse_slos(["p99<10ms", "p99<1ms", "errors<0.1%", "errors<0.5%", "rate>=1000/s"])
    checks = evaluate(slos, RESULT)
    assert [c.passed for c in checks] == [True, False, False, True, False]
    assert checks[0].observed == "p99=5.000ms"
    assert "0.2%" in checks[2].observed
