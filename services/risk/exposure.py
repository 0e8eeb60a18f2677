"""What may still trade, per account and symbol: the orders risk approved or saw accepted
that are not yet filled or cancelled (their quantity, and their value at the price each
was checked at), and the fills not yet in ptrc's position.

An order's life, as risk sees it:
    approved by a check     reserved at once, in the same step as the decision (risk is
                            one asyncio thread: no two checks interleave, so two orders can
                            never both fit under a limit's last room);
    `orders.new`            confirmed (an order risk never checked, fail-open or before a
                            restart, is added here);
    a fill                  its quantity leaves the order and waits, as a pending fill, until
                            ptrc's snapshot of the position includes it (the snapshot's
                            `seq` is the EXEC sequence of its last fill): the position and
                            the working orders never both miss it, nor both count it;
    `exec.cancelled`        released (the venue's cancels, and exeq's for an order it will
                            never route).
A reservation not confirmed within `confirm_within_s` (its OMS did not publish it: 503) is
released; that is a duration on risk's own monotonic clock, compared with nobody else's.
Confirmed orders are kept in Valkey (`risk:working`), so a restarted risk counts them again.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from services import contract

__all__ = ["CONFIRM_WITHIN_S", "Exposure", "Working", "WorkingTotals"]

EPS = 1e-9
# Longer than an OMS takes to publish an accepted order or give it up (PENDING_EXPIRY_S 10 s).
CONFIRM_WITHIN_S = 15.0
# Ids kept of orders known done (an `orders.new` read after its last fill adds nothing) and
# of fills applied (one redelivered under another message id counts once, as in ptrc).
DONE_KEPT = 100_000


@dataclass
class Working:
    order_id: str
    account: str
    symbol: str
    side: str
    open: float  # quantity not yet filled
    # What a unit is valued at while it works: the limit price, or for a MARKET order the
    # quote it was checked at (0 for an order saved before prices were kept).
    price: float = 0.0
    confirmed: bool = False
    fill_ids: list[str] = field(default_factory=list)


@dataclass
class WorkingTotals:
    buys: float = 0.0
    sells: float = 0.0
    buy_notional: float = 0.0  # the working buys valued at their prices
    sell_notional: float = 0.0
    orders: int = 0
    pending_fills: float = 0.0  # signed: filled, not yet in the position risk holds


Key = tuple[str, str]


class Exposure:
    def __init__(self, confirm_within_s: float = CONFIRM_WITHIN_S) -> None:
        self.confirm_within_s = confirm_within_s
        self.orders: dict[str, Working] = {}
        self.totals: dict[Key, WorkingTotals] = {}
        self.unconfirmed: deque[tuple[float, str]] = deque()  # (deadline, order id), in order
        self.fills: dict[Key, list[tuple[int, float]]] = {}  # (EXEC seq, signed quantity)
        self.position_seq: dict[Key, int] = {}
        self.done: OrderedDict[str, None] = OrderedDict()
        self.seen_fills: OrderedDict[str, None] = OrderedDict()
        self.changed: set[str] = set()  # order ids whose Valkey copy is out of date

    # -- reading -----------------------------------------------------------------------
    def of(self, account: str, symbol: str) -> WorkingTotals:
        self._expire()
        return self.totals.get((account, symbol)) or WorkingTotals()

    def to_json(self, account: str | None) -> list[dict[str, Any]]:
        self._expire()
        return [{"account": a, "symbol": s, **asdict(t)} for (a, s), t in sorted(self.totals.items())
                if account in (None, a)]

    # -- changes -----------------------------------------------------------------------
    def reserve(self, order_id: str, account: str, symbol: str, side: str, quantity: float,
                price: float) -> None:
        if order_id in self.orders or order_id in self.done:
            return
        self._add(Working(order_id, account, symbol, side, quantity, price))
        self.unconfirmed.append((time.monotonic() + self.confirm_within_s, order_id))

    def confirm(self, order: contract.Order, price: float | None) -> None:
        """An order on `orders.new`: it may trade until it is filled or cancelled. `price`
        values it when risk did not reserve it (its limit price, or the quote now)."""
        order_id = order.order_id
        if not order_id or order_id in self.done:
            return
        held = self.orders.get(order_id)
        if held is None:
            held = Working(order_id, order.account, order.symbol, order.side, order.quantity,
                           price or 0.0)
            self._add(held)
        held.confirmed = True
        self.changed.add(order_id)

    def fill(self, fill: contract.Fill, seq: int) -> None:
        order_id, fill_id = fill.order_id, fill.fill_id
        key = (fill.account or "default", fill.symbol)
        held = self.orders.get(order_id)
        if fill_id in self.seen_fills or (held is not None and fill_id in held.fill_ids):
            return  # redelivered
        _remember(self.seen_fills, fill_id)
        quantity = fill.quantity
        if seq > self.position_seq.get(key, 0):
            signed = quantity if fill.side == "buy" else -quantity
            self.fills.setdefault(key, []).append((seq, signed))
            self._totals(key).pending_fills += signed
        if held is None:
            if fill.final:
                self._done(order_id)
            return
        held.fill_ids.append(fill_id)
        self._move(held, -min(quantity, held.open))
        if held.open <= EPS or fill.final:
            self.release(order_id)
        else:
            self.changed.add(order_id)

    def release(self, order_id: str) -> None:
        """Filled or cancelled: what is left of it no longer counts."""
        held = self.orders.pop(order_id, None)
        self._done(order_id)
        self.changed.add(order_id)
        if held is not None:
            self._move(held, -held.open)
            t = self._totals((held.account, held.symbol))
            t.orders -= 1
            if t.orders <= 0:  # nothing works: what the sums still hold is float rounding
                t.buys = t.sells = t.buy_notional = t.sell_notional = 0.0

    def position(self, account: str, symbol: str, seq: int) -> None:
        """ptrc's snapshot now includes the fills up to EXEC sequence `seq`."""
        key = (account, symbol)
        self.position_seq[key] = max(seq, self.position_seq.get(key, 0))
        pending = self.fills.get(key)
        if pending:
            kept = [(s, q) for s, q in pending if s > seq]
            self._totals(key).pending_fills = sum(q for _, q in kept)
            self.fills[key] = kept

    def load(self, saved: list[Working]) -> None:
        for w in saved:
            if w.order_id not in self.orders:
                self._add(w)

    # -- inside ------------------------------------------------------------------------
    def _totals(self, key: Key) -> WorkingTotals:
        return self.totals.setdefault(key, WorkingTotals())

    def _add(self, w: Working) -> None:
        self.orders[w.order_id] = w
        self._totals((w.account, w.symbol)).orders += 1
        open_, w.open = w.open, 0.0
        self._move(w, open_)

    def _move(self, w: Working, delta: float) -> None:
        w.open += delta
        t = self._totals((w.account, w.symbol))
        if w.side == "buy":
            t.buys = max(0.0, t.buys + delta)
            t.buy_notional = max(0.0, t.buy_notional + delta * w.price)
        else:
            t.sells = max(0.0, t.sells + delta)
            t.sell_notional = max(0.0, t.sell_notional + delta * w.price)

    def _done(self, order_id: str) -> None:
        _remember(self.done, order_id)

    def _expire(self) -> None:
        now = time.monotonic()
        while self.unconfirmed and self.unconfirmed[0][0] <= now:
            _, order_id = self.unconfirmed.popleft()
            held = self.orders.get(order_id)
            if held is not None and not held.confirmed:
                self.release(order_id)
                self.done.pop(order_id, None)  # it may still be published late: then it counts


def _remember(ids: OrderedDict[str, None], one: str) -> None:
    ids[one] = None
    while len(ids) > DONE_KEPT:
        ids.popitem(last=False)
