"""The paper venue at work: orders from `venue.paper.order`, quotes from ticks, fills out.

One lock serialises order arrivals, ticks and the outbox flush, so an order is never
worked by two of them at once. Every state change is saved (with its events) before the
events are published: an acknowledged order is never lost, a fill never published twice
under two ids.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nats.aio.msg import Msg

from services.kit import Kit, bus
from services.kit.quotes import Quote, QuoteBook
from services.live_gateway.matching import Event, Working, cancel, step, validate
from services.live_gateway.store import VenueStore

__all__ = ["Venue"]

log = logging.getLogger(__name__)


class Venue:
    def __init__(self, kit: Kit) -> None:
        self.js = kit.js
        self.store = VenueStore(kit.valkey)
        self.quotes = QuoteBook()
        self.book: dict[str, dict[str, Working]] = {}  # symbol -> order id -> order, time priority
        self.taken: dict[str, dict[str, float]] = {}  # symbol -> side -> size taken from this quote
        self.lock = asyncio.Lock()
        m = kit.metrics
        self.orders_total = m.counter("venue_orders_total", "Venue instructions", ("action",))
        self.fills_total = m.counter("venue_fills_total", "Fills published")
        self.cancels_total = m.counter("venue_cancels_total", "Cancels published")
        self.resting = m.gauge("venue_resting_orders", "Orders resting at the venue")

    async def start(self) -> None:
        for w in await self.store.load_open():
            self._place(w)
        await self.flush_outbox()
        log.info("venue: %d resting orders loaded", sum(len(b) for b in self.book.values()))

    def _place(self, w: Working) -> None:
        orders = self.book.setdefault(w.symbol, {})
        if w.is_open:
            orders[w.order_id] = w
        else:
            orders.pop(w.order_id, None)
        self.resting.set(sum(len(b) for b in self.book.values()))

    async def _commit(self, w: Working, events: list[Event]) -> None:
        await self.store.save(w, events)
        self._place(w)
        await self._publish(events)

    async def _publish(self, events: list[Event]) -> None:
        for subject, event in events:
            await bus.publish_event(self.js, subject, event)
            (self.fills_total if "fill_id" in event else self.cancels_total).inc()
        await self.store.sent(events)

    async def flush_outbox(self) -> None:
        async with self.lock:
            pending = await self.store.outbox()
            if pending:
                log.info("venue: publishing %d events left in the outbox", len(pending))
                await self._publish(pending)

    async def on_order(self, msg: Msg) -> None:
        """One `venue.paper.order` instruction (durable consumer; redelivery is harmless)."""
        event = bus.decode(msg)
        order, action = event.get("order") or {}, event.get("action")
        if not order.get("order_id") or action not in ("new", "cancel"):
            log.warning("venue: dropped a malformed instruction: %.200r", event)
            return
        self.orders_total.labels(action).inc()
        async with self.lock:
            if action == "new":
                await self._new(order)
            else:
                await self._cancel(order)

    async def _new(self, order: dict[str, Any]) -> None:
        known = await self.store.get(str(order["order_id"]))
        if known is not None:
            if known.status == "CANCEL_PENDING":  # its cancel overtook it
                w = Working(order)
                await self._commit(w, [cancel(w, "cancelled before it reached the venue")])
            return  # seen before: a redelivery
        w = Working(order)
        reason = validate(order)
        if reason is not None:
            await self._commit(w, [cancel(w, f"rejected by the venue: {reason}")])
            return
        taken = self.taken.setdefault(w.symbol, {})
        await self._commit(w, step(w, self.quotes.get(w.symbol), taken, arrival=True))

    async def _cancel(self, ref: dict[str, Any]) -> None:
        order_id = str(ref["order_id"])
        w = next((b[order_id] for b in self.book.values() if order_id in b), None)
        if w is not None:
            await self._commit(w, [cancel(w, "cancelled on request")])
        elif await self.store.get(order_id) is None:
            await self._commit(Working(ref, status="CANCEL_PENDING"), [])
        # else: already filled or cancelled, nothing left to cancel

    async def on_quote(self, quote: Quote) -> None:
        """A new quote: fresh size, and resting orders that it crosses fill."""
        taken = self.taken[quote.symbol] = {}
        async with self.lock:
            for w in list(self.book.get(quote.symbol, {}).values()):
                events = step(w, quote, taken, arrival=False)
                if events:
                    await self._commit(w, events)
