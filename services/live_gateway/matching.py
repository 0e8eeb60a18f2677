"""The paper venue's rules, without I/O: when an order fills, how much, at what price.

A buy takes the ask, a sell the bid. MARKET is always marketable; LIMIT when the quote
is at or through its price (then it fills at the quote, never worse than the limit).
A quote offers its displayed size once: what one order takes, the next cannot, until
the next tick. IOC fills what it can on arrival and cancels the rest; GTC and DAY rest. A MARKET or IOC
order older than a bound when it arrives (a redelivery after a crash: `ack_wait` is 30 s)
is cancelled unfilled: it would trade at whatever the price is by then.
Fill ids are `{order_id}-{n}`: the n-th fill of an order always has the same id.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from services.contract import EXEC_CANCELLED, Cancelled, Fill, Order, OrderRef, fill_subject, now_ms
from services.kit.quotes import Quote

__all__ = ["CancelFirst", "Event", "Held", "Working", "cancel", "quote_too_old", "stale", "step", "validate"]

EPS = 1e-9
Event = tuple[str, Fill | Cancelled]  # (subject, payload)


class Working(msgspec.Struct, kw_only=True):
    """An order as the venue holds it (`venue:order:{id}` is its JSON)."""

    order: Order
    filled: float = 0.0
    fills: int = 0
    status: Literal["OPEN", "FILLED", "CANCELLED"] = "OPEN"

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def symbol(self) -> str:
        return self.order.symbol

    @property
    def leaves(self) -> float:
        return round(self.order.quantity - self.filled, 12)

    @property
    def is_open(self) -> bool:
        return self.status == "OPEN"


class CancelFirst(msgspec.Struct, kw_only=True):
    """An order whose cancel reached the venue before the order did: only its reference is
    known, and it is cancelled the moment it arrives. Stored in Working's shape (filled and
    fills 0), as the venue always has."""

    order: OrderRef
    filled: float = 0.0
    fills: int = 0
    status: Literal["CANCEL_PENDING"] = "CANCEL_PENDING"

    @property
    def order_id(self) -> str:
        return self.order.order_id

    is_open = False


Held = Working | CancelFirst


def validate(order: Order) -> str | None:
    """Why the venue cannot work this order, or None (its types are the contract's: decoded)."""
    if not order.symbol:
        return "symbol is required"
    if not order.quantity > 0:
        return "quantity must be > 0"
    if order.order_type == "LIMIT" and (order.price is None or not order.price > 0):
        return "a LIMIT order needs a price > 0"
    return None


def _immediate(order: Order) -> bool:
    """MARKET or IOC: worked on arrival only, so only a fresh order at a live quote is."""
    return order.order_type == "MARKET" or order.time_in_force == "IOC"


def stale(order: Order, now_ms: float, max_age_s: float) -> str | None:
    """Why a MARKET or IOC order is too old to fill, or None. Its `created_ts` and `now_ms`
    are both Valkey's clock (services/oms/store.py), so no process's own clock decides."""
    if not _immediate(order) or order.created_ts <= 0:
        return None
    age_s = (now_ms - order.created_ts) / 1000
    if age_s <= max_age_s:
        return None
    return (f"stale: the order was {age_s:.1f}s old when it reached the venue (max_order_age_s "
            f"{max_age_s:g}): not filled")


def quote_too_old(order: Order, quote: Quote | None, max_age_s: float) -> str | None:
    """Why a MARKET or IOC order is not worked on arrival against this quote: it stopped
    (no tick for longer than max_age_s), so its price and size are not the market's."""
    if quote is None or not _immediate(order):
        return None
    age = quote.age_s()
    if age <= max_age_s:
        return None
    return f"stale quote: no tick for {age:.0f}s (quote_stale_s {max_age_s:g}): not filled"


def _price(w: Working, quote: Quote) -> tuple[float, float] | None:
    """(price, displayed size) when the order is marketable against the quote."""
    buy = w.order.side == "buy"
    price, size = (quote.ask, quote.ask_size) if buy else (quote.bid, quote.bid_size)
    if w.order.order_type == "MARKET":
        return price, size
    limit = w.order.price
    if limit is None:  # a LIMIT order without one is cancelled on arrival (validate)
        return None
    return (price, size) if (price <= limit + EPS if buy else price >= limit - EPS) else None


def _fill(w: Working, quantity: float, price: float, final: bool) -> Event:
    w.filled = round(w.filled + quantity, 12)
    w.fills += 1
    if w.leaves <= EPS:
        w.status = "FILLED"
    o = w.order
    fill_id = f"{w.order_id}-{w.fills}"
    return fill_subject(w.symbol), Fill(
        id=fill_id, fill_id=fill_id, order_id=w.order_id, client_order_id=o.client_order_id,
        account=o.account, symbol=w.symbol, side=o.side, quantity=quantity, price=price,
        cumulative_quantity=w.filled, leaves_quantity=max(w.leaves, 0.0),
        final=final or w.status == "FILLED", order_ts=o.created_ts, arrival_mid=o.arrival_mid,
        ts=now_ms())


def cancel(w: Working, reason: str) -> Event:
    """Cancel what is left of the order."""
    leaves = max(w.leaves, 0.0)
    w.status = "CANCELLED"
    return EXEC_CANCELLED, Cancelled(id=f"cancelled-{w.order_id}", ts=now_ms(), order_id=w.order_id,
                                     account=w.order.account, symbol=w.symbol,
                                     cancelled_quantity=leaves, reason=reason)


def step(w: Working, quote: Quote | None, taken: dict[str, float], arrival: bool) -> list[Event]:
    """Work the order against the quote; `taken` is the size already taken per side this tick.

    Returns the events to publish (fills, then a cancel for an IOC's rest).
    """
    events: list[Event] = []
    ioc = w.order.time_in_force == "IOC"
    priced = _price(w, quote) if quote is not None else None
    if priced is not None:
        price, size = priced
        side = w.order.side
        quantity = round(min(w.leaves, size - taken.get(side, 0.0)), 12)
        if quantity > EPS:
            taken[side] = taken.get(side, 0.0) + quantity
            events.append(_fill(w, quantity, price, final=ioc))
    if arrival and ioc and w.is_open:
        why = "no quote" if quote is None else "not marketable" if priced is None else "no more size"
        events.append(cancel(w, f"IOC: rest cancelled ({why})"))
    return events
