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

from dataclasses import dataclass
from typing import Any

from services.contract import EXEC_CANCELLED, fill_subject, now_ms
from services.kit.quotes import Quote

__all__ = ["Event", "Working", "cancel", "quote_too_old", "stale", "step", "validate"]

EPS = 1e-9
Event = tuple[str, dict[str, Any]]  # (subject, payload)


@dataclass
class Working:
    """An order as the venue holds it."""

    order: dict[str, Any]
    filled: float = 0.0
    fills: int = 0
    status: str = "OPEN"  # OPEN | FILLED | CANCELLED | CANCEL_PENDING (cancel came first)

    @property
    def order_id(self) -> str:
        return str(self.order["order_id"])

    @property
    def symbol(self) -> str:
        return str(self.order.get("symbol", ""))

    @property
    def leaves(self) -> float:
        return round(float(self.order["quantity"]) - self.filled, 12)

    @property
    def is_open(self) -> bool:
        return self.status == "OPEN"

    def to_json(self) -> dict[str, Any]:
        return {"order": self.order, "filled": self.filled, "fills": self.fills, "status": self.status}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Working:
        return cls(doc["order"], doc["filled"], doc["fills"], doc["status"])


def validate(order: dict[str, Any]) -> str | None:
    """Why the venue cannot work this order, or None."""
    try:
        quantity = float(order.get("quantity") or 0)
        price = order.get("price")
        price = None if price is None else float(price)
    except (TypeError, ValueError):
        return "quantity and price must be numbers"
    if not order.get("symbol"):
        return "symbol is required"
    if order.get("side") not in ("buy", "sell"):
        return "side must be buy or sell"
    if not quantity > 0:
        return "quantity must be > 0"
    order_type = order.get("order_type", "LIMIT")
    if order_type not in ("MARKET", "LIMIT"):
        return "order_type must be MARKET or LIMIT"
    if order_type == "LIMIT" and (price is None or not price > 0):
        return "a LIMIT order needs a price > 0"
    return None


def stale(order: dict[str, Any], now_ms: float, max_age_s: float) -> str | None:
    """Why a MARKET or IOC order is too old to fill, or None. Its `created_ts` and `now_ms`
    are both Valkey's clock (services/oms/store.py), so no process's own clock decides."""
    if order.get("order_type") != "MARKET" and order.get("time_in_force") != "IOC":
        return None
    created = order.get("created_ts")
    if not isinstance(created, int | float) or isinstance(created, bool) or created <= 0:
        return None
    age_s = (now_ms - created) / 1000
    if age_s <= max_age_s:
        return None
    return (f"stale: the order was {age_s:.1f}s old when it reached the venue (max_order_age_s "
            f"{max_age_s:g}): not filled")


def quote_too_old(order: dict[str, Any], quote: Quote | None, max_age_s: float) -> str | None:
    """Why a MARKET or IOC order is not worked on arrival against this quote: it stopped
    (no tick for longer than max_age_s), so its price and size are not the market's."""
    if quote is None or (order.get("order_type") != "MARKET" and order.get("time_in_force") != "IOC"):
        return None
    age = quote.age_s()
    if age <= max_age_s:
        return None
    return f"stale quote: no tick for {age:.0f}s (quote_stale_s {max_age_s:g}): not filled"


def _price(w: Working, quote: Quote) -> tuple[float, float] | None:
    """(price, displayed size) when the order is marketable against the quote."""
    buy = w.order["side"] == "buy"
    price, size = (quote.ask, quote.ask_size) if buy else (quote.bid, quote.bid_size)
    if w.order.get("order_type") == "MARKET":
        return price, size
    limit = float(w.order["price"])
    return (price, size) if (price <= limit + EPS if buy else price >= limit - EPS) else None


def _fill(w: Working, quantity: float, price: float, final: bool) -> Event:
    w.filled = round(w.filled + quantity, 12)
    w.fills += 1
    if w.leaves <= EPS:
        w.status = "FILLED"
    o = w.order
    fill_id = f"{w.order_id}-{w.fills}"
    return fill_subject(w.symbol), {
        "id": fill_id, "fill_id": fill_id, "order_id": w.order_id,
        "client_order_id": o.get("client_order_id"), "account": o.get("account"),
        "symbol": w.symbol, "side": o["side"], "quantity": quantity, "price": price,
        "cumulative_quantity": w.filled, "leaves_quantity": max(w.leaves, 0.0),
        "final": final or w.status == "FILLED", "order_ts": o.get("created_ts"),
        "arrival_mid": o.get("arrival_mid"), "ts": now_ms()}


def cancel(w: Working, reason: str) -> Event:
    """Cancel what is left of the order."""
    leaves = max(w.leaves, 0.0)
    w.status = "CANCELLED"
    return EXEC_CANCELLED, {"id": f"cancelled-{w.order_id}", "ts": now_ms(), "order_id": w.order_id,
                            "account": w.order.get("account"), "symbol": w.symbol,
                            "cancelled_quantity": leaves, "reason": reason}


def step(w: Working, quote: Quote | None, taken: dict[str, float], arrival: bool) -> list[Event]:
    """Work the order against the quote; `taken` is the size already taken per side this tick.

    Returns the events to publish (fills, then a cancel for an IOC's rest).
    """
    events: list[Event] = []
    ioc = w.order.get("time_in_force") == "IOC"
    priced = _price(w, quote) if quote is not None else None
    if priced is not None:
        price, size = priced
        side = w.order["side"]
        quantity = round(min(w.leaves, size - taken.get(side, 0.0)), 12)
        if quantity > EPS:
            taken[side] = taken.get(side, 0.0) + quantity
            events.append(_fill(w, quantity, price, final=ioc))
    if arrival and ioc and w.is_open:
        why = "no quote" if quote is None else "not marketable" if priced is None else "no more size"
        events.append(cancel(w, f"IOC: rest cancelled ({why})"))
    return events
