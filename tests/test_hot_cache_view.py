"""The hot-cache view on hand-computed examples (no I/O)."""

from __future__ import annotations

import pytest

from services import contract
from services.hot_cache.view import View

pytestmark = pytest.mark.unit


def position(quantity: float, avg_price: float, realized: float = 0.0, account: str = "a",
             seq: int = 1) -> contract.PositionSnapshot:
    return contract.PositionSnapshot(id=f"{account}:XYZ:{seq}", account=account, symbol="XYZ",
                                     quantity=quantity, avg_price=avg_price, realized=realized, seq=seq)


def tick(bid: float, ask: float, last: float, ts: float) -> contract.Tick:
    return contract.Tick(id=f"XYZ-{ts}", ts=ts, symbol="XYZ", bid=bid, ask=ask, last=last)


def bar(interval: str, start: int, close: float) -> contract.Bar:
    return contract.Bar(id=f"XYZ-{interval}-{start}", symbol="XYZ", interval=interval, start=start,
                        end=start + 60, open=close, high=close, low=close, close=close)


def test_positions_and_pnl_marked_at_the_mid() -> None:
    v = View()
    v.positions.apply(position(3, 110.0))
    v.positions.apply(position(2, 110.0, realized=15.5, seq=2))  # the latest snapshot wins
    v.positions.apply(position(9, 1.0, account="other"))
    v.apply_tick(tick(99.99, 100.01, 100.0, 1.0))
    s = v.snapshot("a")
    assert s["positions"]["XYZ"] == pytest.approx({"quantity": 2, "avg_price": 110.0, "realized": 15.5,
                                                   "mark": 100.0, "unrealized": -20.0})
    assert s["pnl"] == pytest.approx({"realized": 15.5, "unrealized": -20.0, "total": -4.5})
    assert v.snapshot("nobody")["positions"] == {}


def test_latest_tick_and_bar_win_over_replayed_older_ones() -> None:
    v = View()
    v.apply_tick(tick(10, 12, 11, 2.0))
    v.apply_tick(tick(1, 1, 1, 1.0))
    assert v.tickers["XYZ"]["mid"] == 11.0
    v.apply_bar(bar("1m", 120, 5))
    v.apply_bar(bar("1m", 60, 4))
    v.apply_bar(bar("5m", 0, 3))
    snap = v.snapshot("a", {"XYZ"})
    assert snap["bars"]["XYZ"]["1m"]["close"] == 5 and snap["bars"]["XYZ"]["5m"]["close"] == 3


def test_position_without_a_quote_has_no_made_up_unrealized() -> None:
    v = View()
    v.positions.apply(position(1, 50.0))
    s = v.snapshot("a")
    assert s["positions"]["XYZ"]["unrealized"] is None and s["pnl"]["total"] == 0.0
