"""The hot-cache view on hand-computed examples (no I/O)."""

from __future__ import annotations

import pytest

from services.hot_cache.view import View


def fill(fill_id: str, side: str, qty: float, price: float, account: str = "a") -> dict[str, object]:
    return {"id": fill_id, "fill_id": fill_id, "account": account, "symbol": "xyz", "side": side,
            "quantity": qty, "price": price}


def test_positions_and_pnl_marked_at_the_mid() -> None:
    v = View()
    assert v.apply_fill(fill("f1", "buy", 2, 100.0))
    assert v.apply_fill(fill("f2", "buy", 1, 130.0))
    assert not v.apply_fill(fill("f2", "buy", 1, 130.0))  # the same fill id counts once
    assert v.apply_fill(fill("f3", "sell", 1, 125.5))  # realizes 15.5 against the 110 average
    v.apply_fill(fill("f4", "buy", 9, 1.0, account="other"))
    v.apply_tick({"symbol": "XYZ", "bid": 99.99, "ask": 100.01, "last": 100.0, "ts": 1.0})
    s = v.snapshot("a")
    assert s["positions"]["XYZ"] == pytest.approx({"quantity": 2, "avg_price": 110.0, "realized": 15.5,
                                                   "mark": 100.0, "unrealized": -20.0})
    assert s["pnl"] == pytest.approx({"realized": 15.5, "unrealized": -20.0, "total": -4.5})
    assert v.snapshot("nobody")["positions"] == {}


def test_latest_tick_and_bar_win_over_replayed_older_ones() -> None:
    v = View()
    v.apply_tick({"symbol": "XYZ", "bid": 10, "ask": 12, "last": 11, "ts": 2.0})
    v.apply_tick({"symbol": "XYZ", "bid": 1, "ask": 1, "last": 1, "ts": 1.0})
    assert v.tickers["XYZ"]["mid"] == 11.0
    v.apply_bar({"symbol": "XYZ", "interval": "1m", "start": 120, "close": 5})
    v.apply_bar({"symbol": "XYZ", "interval": "1m", "start": 60, "close": 4})
    v.apply_bar({"symbol": "XYZ", "interval": "5m", "start": 0, "close": 3})
    snap = v.snapshot("a", {"XYZ"})
    assert snap["bars"]["XYZ"]["1m"]["close"] == 5 and snap["bars"]["XYZ"]["5m"]["close"] == 3


def test_position_without_a_quote_has_no_made_up_unrealized() -> None:
    v = View()
    v.apply_fill(fill("f1", "buy", 1, 50.0))
    s = v.snapshot("a")
    assert s["positions"]["XYZ"]["unrealized"] is None and s["pnl"]["total"] == 0.0
