"""The paper venue's rules without I/O: prices, sizes, IOC, validation, fill ids."""

from __future__ import annotations

import math

import msgspec
import pytest

from services import contract
from services.contract import Cancelled, Fill, Order
from services.kit.quotes import Quote
from services.live_gateway.matching import Working, step, validate

pytestmark = pytest.mark.unit


def quote(bid: float, ask: float, size: float = math.inf) -> Quote:
    return Quote("X", bid, ask, size, size, 0.0, 0.0)


def order(side: contract.Side, quantity: float, order_type: contract.OrderType = "LIMIT",
          price: float | None = None, tif: contract.TimeInForce = "GTC", oid: str = "o1") -> Working:
    return Working(order=Order(order_id=oid, account="a", symbol="X", side=side, quantity=quantity,
                               order_type=order_type, price=price, time_in_force=tif))


def filled(event: tuple[str, Fill | Cancelled]) -> tuple[str, Fill]:
    subject, payload = event
    assert isinstance(payload, Fill), payload
    return subject, payload


def cancelled(event: tuple[str, Fill | Cancelled]) -> tuple[str, Cancelled]:
    subject, payload = event
    assert isinstance(payload, Cancelled), payload
    return subject, payload


def test_limit_sell_fills_at_the_bid_when_the_bid_reaches_it() -> None:
    w = order("sell", 2, price=101.0)
    assert step(w, quote(100.5, 101.5), {}, arrival=True) == []
    [(subject, fill)] = map(filled, step(w, quote(101.2, 101.7), {}, arrival=False))
    assert subject == "exec.fill.X" and fill.price == 101.2 and fill.fill_id == "o1-1"
    assert w.status == "FILLED" and fill.final and fill.cumulative_quantity == 2


def test_displayed_size_is_taken_once_per_tick() -> None:
    taken: dict[str, float] = {}
    q = quote(10.0, 10.1, size=3)
    a, b = order("buy", 2, "MARKET", oid="a"), order("buy", 2, "MARKET", oid="b")
    [(_, fa)] = map(filled, step(a, q, taken, arrival=True))
    [(_, fb)] = map(filled, step(b, q, taken, arrival=True))
    assert (fa.quantity, fb.quantity) == (2, 1)
    assert b.is_open and not fb.final and fb.leaves_quantity == 1
    # the next tick: fresh size
    [(_, fb2)] = map(filled, step(b, quote(10.0, 10.2, size=3), {}, arrival=False))
    assert (fb2.fill_id, fb2.price, fb2.cumulative_quantity) == ("b-2", 10.2, 2)


def test_market_without_a_quote_waits_but_ioc_is_cancelled() -> None:
    gtc, ioc = order("buy", 1, "MARKET"), order("buy", 1, "MARKET", tif="IOC")
    assert step(gtc, None, {}, arrival=True) == [] and gtc.is_open
    [(subject, c)] = map(cancelled, step(ioc, None, {}, arrival=True))
    assert subject == "exec.cancelled" and c.cancelled_quantity == 1 and "no quote" in (c.reason or "")


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("quantity", 0, "quantity must be > 0"), ("price", None, "LIMIT order needs a price"),
    ("symbol", "", "symbol")])
def test_orders_the_venue_cannot_work(field: str, value: object, reason: str) -> None:
    o = msgspec.structs.replace(order("buy", 1, price=10.0).order, **{field: value})
    assert reason in (validate(o) or "")


@pytest.mark.parametrize(("field", "value"), [("quantity", "x"), ("side", "hold"), ("order_type", "STOP")])
def test_an_instruction_of_the_wrong_type_never_reaches_the_venue(field: str, value: object) -> None:
    """The contract's decoder refuses it (the kit counts, logs and acks it: services/kit/bus.py)."""
    new = contract.VenueNew(id="new-o1", order=order("buy", 1, price=10.0).order)
    doc = msgspec.to_builtins(new)
    doc["order"][field] = value
    with pytest.raises(msgspec.ValidationError):
        contract.decode_venue_order(msgspec.json.encode(doc))


def test_a_market_or_ioc_order_is_not_filled_at_a_quote_that_stopped() -> None:
    """After a full disk the venue worked MARKET IOC orders against a 120 s old quote."""
    import time

    from services.kit.quotes import Quote
    from services.live_gateway.matching import quote_too_old

    old = Quote("X", 99.0, 101.0, 1.0, 1.0, 0.0, time.monotonic() - 120)
    fresh = Quote("X", 99.0, 101.0, 1.0, 1.0, 0.0, time.monotonic())
    market = order("buy", 1, "MARKET").order
    ioc = order("buy", 1, price=100.0, tif="IOC").order
    gtc = order("buy", 1, price=100.0).order
    assert "stale quote" in (quote_too_old(market, old, 10.0) or "")
    assert "stale quote" in (quote_too_old(ioc, old, 10.0) or "")
    assert quote_too_old(gtc, old, 10.0) is None  # it rests for the next tick
    assert quote_too_old(market, fresh, 10.0) is None
