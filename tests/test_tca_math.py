"""TCA maths on hand-computed examples."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from services.contract import Fill
from services.execution_quality.consumers import fill_record
from services.execution_quality.tca import percentile, slippage_bps, summarize

pytestmark = pytest.mark.unit


def test_slippage_sign_is_a_cost_to_the_trader() -> None:
    assert slippage_bps("buy", 100.05, 100.0) == pytest.approx(5.0)  # paid above the mid
    assert slippage_bps("sell", 99.90, 100.0) == pytest.approx(10.0)  # sold below the mid
    assert slippage_bps("buy", 99.98, 100.0) == pytest.approx(-2.0)  # price improvement
    assert slippage_bps("sell", 100.10, 100.0) == pytest.approx(-10.0)
    with pytest.raises(ValueError):
        slippage_bps("buy", 1.0, 0.0)


def test_percentiles_interpolate_between_ranks() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 50) == pytest.approx(25.0)  # rank 1.5 between 20 and 30
    assert percentile(values, 90) == pytest.approx(37.0)  # rank 2.7: 30 + 0.7 * 10
    assert percentile(values, 99) == pytest.approx(39.7)
    assert percentile(values, 0) == 10.0 and percentile(values, 100) == 40.0
    assert percentile([7.0], 99) == 7.0


def test_summary_weights_slippage_by_quantity() -> None:
    fills: list[dict[str, Any]] = [{"quantity": 1, "slippage_bps": 5.0, "latency_ms": 10.0},
                                   {"quantity": 3, "slippage_bps": 10.0, "latency_ms": 20.0},
                                   {"quantity": 1, "slippage_bps": -2.0, "latency_ms": 30.0},
                                   # no arrival mid:
                                   {"quantity": 2, "slippage_bps": None, "latency_ms": 40.0}]
    s = summarize(fills)
    assert s["fills"] == 4 and s["quantity"] == 7
    assert s["slippage_bps"]["weighted_avg"] == pytest.approx(33 / 5)  # (5 + 30 - 2) / 5
    assert s["slippage_bps"]["p50"] == pytest.approx(5.0)
    assert s["slippage_bps"]["worst"] == 10.0
    assert s["slippage_bps"]["measured"] == 3 and s["slippage_bps"]["without_arrival_mid"] == 1
    assert s["latency_ms"] == {"count": 4, "p50": 25.0, "p90": 37.0, "p99": 39.7, "max": 40.0}


def test_empty_summary_has_no_made_up_numbers() -> None:
    s = summarize([])
    assert s["slippage_bps"]["weighted_avg"] is None and s["latency_ms"]["p50"] is None


def test_fill_record() -> None:
    fill = Fill(id="f1", fill_id="f1", order_id="o1", symbol="abc", side="sell", quantity=2,
                price=99.9, order_ts=1000.0, arrival_mid=100.0, ts=1012.5)
    record = fill_record(fill)
    assert record["symbol"] == "ABC" and record["latency_ms"] == pytest.approx(12.5)
    assert record["slippage_bps"] == pytest.approx(10.0) and record["arrival_mid"] == 100.0
    # A fill from a venue that does not carry the arrival mid (or an order risk did not
    # price) is measured for latency only.
    without = msgspec.structs.replace(fill, arrival_mid=None)
    assert fill_record(without)["slippage_bps"] is None and fill_record(without)["latency_ms"] == 12.5
