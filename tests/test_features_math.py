"""Feature maths on a hand-computed example (window 3)."""

from __future__ import annotations

import math

import pytest

from services.contract import Bar
from services.feast_pipeline.features import bar_returns, compute_features, vwap

pytestmark = pytest.mark.unit


def bar(start: int, close: float, volume: float, high: float | None = None,
        low: float | None = None) -> Bar:
    return Bar(id=f"X-1m-{start}", symbol="X", interval="1m", start=start, end=start + 60_000, open=close,
               close=close, high=close if high is None else high, low=close if low is None else low,
               volume=volume)


# closes 100 -> 110 -> 99 -> 108.9: returns +10 %, -10 %, +10 %
BARS = [bar(0, 100.0, 10), bar(60_000, 110.0, 10), bar(120_000, 99.0, 20),
        bar(180_000, 108.9, 10, high=110.0, low=107.8)]  # typical (110 + 107.8 + 108.9) / 3 = 108.9


def test_returns() -> None:
    assert bar_returns([100.0, 110.0, 99.0]) == pytest.approx([0.10, -0.10])


def test_vwap_uses_the_typical_price() -> None:
    # (110*10 + 99*20 + 108.9*10) / 40 = 4169 / 40
    assert vwap(BARS[1:]) == pytest.approx(104.225)
    assert vwap([bar(0, 1.0, 0)]) is None


def test_features_on_a_hand_computed_example() -> None:
    f = compute_features(BARS, window=3)
    assert f["last_return"] == pytest.approx(0.10)
    # returns 0.1, -0.1, 0.1: mean 1/30, squared deviations 0.04/9 + 0.16/9 + 0.04/9 = 0.24/9,
    # sample variance 0.12/9 = 0.04/3, stdev 0.2 / sqrt(3)
    assert f["volatility"] == pytest.approx(0.2 / math.sqrt(3))
    assert f["vwap"] == pytest.approx(104.225)
    assert f["vwap_distance_bps"] == pytest.approx((108.9 - 104.225) / 104.225 * 10_000)
    assert f["vwap_distance_bps"] == pytest.approx(448.5488, abs=1e-3)
    assert f["bar_start"] == 180_000 and f["bars"] == 4 and f["close"] == 108.9


def test_window_keeps_only_the_last_bars() -> None:
    f = compute_features([bar(0, 1.0, 1), *BARS], window=3)  # the extra oldest bar is ignored
    assert f == compute_features(BARS, window=3)


def test_too_few_bars_give_none_not_made_up_numbers() -> None:
    one = compute_features(BARS[:1], window=3)
    assert one["last_return"] is None and one["volatility"] is None
    assert one["vwap"] == pytest.approx(100.0) and one["vwap_distance_bps"] == pytest.approx(0.0)
    two = compute_features(BARS[:2], window=3)
    assert two["last_return"] == pytest.approx(0.10) and two["volatility"] is None
    with pytest.raises(ValueError):
        compute_features([], window=3)
