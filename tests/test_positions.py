"""Average-cost position maths, on hand-computed examples."""

from __future__ import annotations

import pytest

from services.kit.positions import Position

pytestmark = pytest.mark.unit


def test_buys_average_the_price() -> None:
    p = Position()
    p.apply("buy", 2, 100.0)
    p.apply("buy", 1, 130.0)
    assert p.quantity == 3
    assert p.avg_price == pytest.approx(110.0)
    assert p.realized == 0


def test_partial_close_realizes_against_the_average() -> None:
    p = Position()
    p.apply("buy", 3, 110.0)
    assert p.apply("sell", 1, 125.5) == pytest.approx(15.5)
    assert p.quantity == 2 and p.avg_price == pytest.approx(110.0)
    assert p.unrealized(100.0) == pytest.approx(-20.0)


def test_short_then_cover() -> None:
    p = Position()
    p.apply("sell", 2, 50.0)
    assert p.quantity == -2
    assert p.apply("buy", 2, 45.25) == pytest.approx(9.5)
    assert p.quantity == 0 and p.avg_price == 0


def test_crossing_zero_opens_the_rest_at_the_fill_price() -> None:
    p = Position()
    p.apply("buy", 1, 100.0)
    assert p.apply("sell", 3, 90.0) == pytest.approx(-10.0)
    assert p.quantity == -2 and p.avg_price == 90.0
    assert p.realized == pytest.approx(-10.0)
