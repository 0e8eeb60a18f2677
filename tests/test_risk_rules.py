"""The pre-trade rules as a pure function, the limits file and the book."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from services import contract
from services.contract import RiskCheckRequest as CheckRequest
from services.risk.book import Book
from services.risk.exposure import WorkingTotals
from services.risk.limits import load_limits
from services.risk.rules import KillSwitch, check

pytestmark = pytest.mark.unit

LIMITS = load_limits()


def decide(symbol: str = "BTCUSDT", side: contract.Side = "buy", quantity: float = 1.0, *,
           price: float | None = 50_000, position: float = 0.0, known: bool = True,
           kill: KillSwitch | None = None) -> contract.RiskCheckReply:
    req = CheckRequest(account="a", symbol=symbol, side=side, quantity=quantity, price=price)
    return check(req, LIMITS, position=position, price=price, known=known, kill=kill or KillSwitch())


def test_shipped_limits_mirror_the_original() -> None:
    assert LIMITS.for_symbol("BTCUSDT").max_position == 10
    assert LIMITS.for_symbol("ETHUSDT").max_position == 100
    # DEFAULT really applies to every other symbol, listed or not.
    assert LIMITS.for_symbol("SOLUSDT") == LIMITS.default
    assert LIMITS.for_symbol("ANYTHINGUSDT") == LIMITS.default
    assert {"BTCUSDT", "ETHUSDT", "SOLUSDT"} <= LIMITS.symbols


def test_override_inherits_unset_fields_from_default(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text('symbols = ["X"]\n[DEFAULT]\nmax_order_quantity = 5\nmax_order_notional = 100\n'
                    'max_position = 7\n[X]\nmax_position = 3\n')
    limits = load_limits(path)
    assert limits.for_symbol("X").max_position == 3
    assert limits.for_symbol("X").max_order_quantity == 5


GOOD_DEFAULT = "[DEFAULT]\nmax_position = 1\nmax_order_quantity = 1\nmax_order_notional = 1\n"


@pytest.mark.parametrize("text", [GOOD_DEFAULT.replace("max_position = 1", "max_position = -1"),
                                  GOOD_DEFAULT + "[X]\nmax_positon = 3\n"])
def test_bad_limits_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_limits(path)


def test_small_order_is_low() -> None:
    result = decide(quantity=0.1)
    assert (result.approved, result.risk_level, result.warnings) == (True, "LOW", [])


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"known": False}, "unknown symbol"),
    ({"quantity": 0}, "quantity must be > 0"),
    ({"quantity": -3}, "quantity must be > 0"),
    ({"quantity": 6}, "max order quantity"),
    ({"price": None}, "no price"),
    ({"quantity": 1, "price": 2_000_000}, "max order notional"),
    ({"quantity": 2, "position": 9.5}, "max position"),
    ({"side": "sell", "quantity": 2, "position": -9.5}, "max position"),
    ({"kill": KillSwitch(global_reason="halt")}, "kill switch is active (global)"),
    ({"kill": KillSwitch(symbols={"BTCUSDT": "exchange issue"})}, "kill switch is active for BTCUSDT"),
])
def test_each_rule_rejects(kwargs: dict[str, Any], reason: str) -> None:
    result = decide(**kwargs)
    assert not result.approved
    assert result.risk_level == "CRITICAL"
    assert reason in (result.reason or "")


def test_symbol_kill_switch_leaves_other_symbols_alone() -> None:
    kill = KillSwitch(symbols={"BTCUSDT": "halt"})
    assert decide("ETHUSDT", price=3000, kill=kill).approved


def test_reducing_an_oversized_position_is_allowed() -> None:
    assert decide(side="sell", quantity=2, position=12).approved


def test_exposure_notional_values_the_position_at_the_mark_and_working_orders_at_their_prices() -> None:
    """SOLUSDT (DEFAULT: max_exposure_notional 2,000,000, max_position 1,000): 500 held at a
    mid of 3,000 is 1,500,000; working buys worth 400,000 leave room for 100,000 more."""
    req = CheckRequest(account="a", symbol="SOLUSDT", side="buy", quantity=40, price=2_500)
    working = WorkingTotals(buys=160, buy_notional=400_000, orders=4)

    def run(req: CheckRequest, mark: float = 3_000) -> contract.RiskCheckReply:
        return check(req, LIMITS, position=500, price=req.price, known=True, kill=KillSwitch(),
                     working=working, mark=mark)

    assert run(req).approved  # 1,500,000 + 400,000 + 100,000: at the limit, not over it
    over = run(msgspec.structs.replace(req, quantity=41))
    assert not over.approved and "max exposure notional 2,000,000.00" in (over.reason or "")
    assert "position 500 at 3,000.00, working buys 400,000.00" in (over.reason or "")
    assert not run(req, mark=3_001).approved  # the position's value moves with the mark
    # A sell shrinks a long exposure: it passes, and the working buys do not count against it.
    assert run(msgspec.structs.replace(req, side="sell", quantity=400)).approved


def test_warning_at_80_percent_and_high_at_95() -> None:
    medium = decide(quantity=4.0)  # 80% of max order quantity 5
    assert medium.approved and medium.risk_level == "MEDIUM"
    assert any("order quantity at 80%" in w for w in medium.warnings)
    high = decide(quantity=1, position=8.6)  # position 9.6 of 10
    assert high.approved and high.risk_level == "HIGH"
    assert any(w.startswith("position at 96%") for w in high.warnings)


def test_book_takes_the_latest_snapshot_and_prices_market_orders_at_the_quote() -> None:
    book = Book()
    for seq, quantity in ((1, 2.0), (2, 5.0)):
        book.positions.apply(contract.PositionSnapshot(id=f"a:BTCUSDT:{seq}", account="a",
                                                       symbol="BTCUSDT", quantity=quantity,
                                                       avg_price=100.0, realized=0.0, seq=seq))
    assert book.position("a", "BTCUSDT") == 5.0 and book.position("b", "BTCUSDT") == 0.0
    assert not book.knows("BTCUSDT")
    book.quotes.update(contract.Tick(id="t", symbol="BTCUSDT", bid=99.0, ask=101.0))
    assert book.knows("BTCUSDT")
    assert book.price_for("BTCUSDT", "buy", None) == 101.0
    assert book.price_for("BTCUSDT", "sell", None) == 99.0
    assert book.price_for("BTCUSDT", "sell", 98.5) == 98.5
    assert book.price_for("ETHUSDT", "buy", None) is None


@pytest.mark.parametrize("quantity", [4.99995, 999.99995, 0.00015])
def test_a_quantity_off_the_lot_is_rejected_at_any_size(quantity: float) -> None:
    """The tolerance grew with the number of lots: SOLUSDT 999.99995 was accepted."""
    result = decide("SOLUSDT", quantity=quantity, price=100.0)
    assert not result.approved and "lot size" in (result.reason or "")


@pytest.mark.parametrize("quantity", [5.0, 999.9999, 0.3, 0.0001, 123.4567])
def test_a_quantity_on_the_lot_passes_the_lot_rule(quantity: float) -> None:
    result = decide("SOLUSDT", quantity=quantity, price=1.0)
    assert "lot size" not in (result.reason or ""), result.reason


def test_a_market_order_is_not_valued_on_a_quote_that_stopped() -> None:
    """After a full disk risk priced MARKET orders on a 120 s old quote."""
    import dataclasses
    import time

    from services.risk.engine import RiskEngine

    engine = RiskEngine(LIMITS, max_quote_age_s=10.0)
    engine.book.quotes.update(contract.Tick(id="t", symbol="BTCUSDT", bid=50_000, ask=50_010))
    req = CheckRequest(account="a", symbol="BTCUSDT", side="buy", quantity=1.0)
    assert engine.decide(req).approved
    quote = engine.book.quotes.quotes["BTCUSDT"]
    engine.book.quotes.quotes["BTCUSDT"] = dataclasses.replace(quote, received=time.monotonic() - 120)
    stale = engine.decide(req)
    assert not stale.approved and "no fresh quote for BTCUSDT" in (stale.reason or "")
    priced = CheckRequest(account="a", symbol="BTCUSDT", side="buy", quantity=1.0, price=50_000)
    assert engine.decide(priced).approved  # a LIMIT order carries its own price


def test_a_check_is_the_contracts_request_and_its_reasons_name_the_field() -> None:
    from services.risk.engine import RiskEngine

    engine = RiskEngine(LIMITS)
    engine.book.quotes.update(contract.Tick(id="t", symbol="BTCUSDT", bid=50_000, ask=50_010))
    invalid, answer = engine.decide_raw(b'{"symbol": "btcusdt", "side": "buy", "quantity": 1}')
    assert invalid == [] and answer.approved and answer.mid == 50_005  # any case is the symbol
    invalid, answer = engine.decide_raw(b'{"symbol": "BTCUSDT", "side": "buy", "quantity": "1"}')
    assert invalid == ["quantity: Expected `float`, got `str`"] and not answer.approved
    invalid, _ = engine.decide_raw(b'{"symbol": "BTC USDT", "side": "buy", "quantity": 1}')
    assert invalid[0].startswith("symbol: ")  # the contract's one symbol rule
    invalid, _ = engine.decide_raw(b'{"symbol": ')
    assert invalid[0].startswith("body is not JSON")
