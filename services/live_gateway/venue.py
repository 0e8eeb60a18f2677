"""The paper venue at work: orders from `venue.paper.order`, quotes from ticks, fills out.

One lock serialises order arrivals, ticks and the outbox flush, so an order is never
worked by two of them at once. Every state change is saved (with its events) before the
events are published: an acknowledged order is never lost, a fill never published twice
under two ids.
"""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg

from services.contract import Fill, Order, OrderRef, VenueNew
from services.kit import Kit, bus
from services.kit.quotes import Quote, QuoteBook
from services.live_gateway.matching import (
    CancelFirst,
    Event,
    Held,
    Working,
    cancel,
    quote_too_old,
    stale,
    step,
    validate,
)
from services.live_gateway.store import VenueStore

__all__ = ["Venue"]

log = logging.getLogger(__name__)


class Venue:
    def __init__(self, kit: Kit, max_order_age_s: float = 5.0, quote_stale_s: float = 10.0) -> None:
        self.js = kit.js
        self.max_order_age_s = max_order_age_s
        self.quote_stale_s = quote_stale_s
        self.store = VenueStore(kit.valkey)
        self.quotes = QuoteBook()
        self.book: dict[str, dict[str, Working]] = {}  # symbol -> order id -> order, time priority
        self.taken: dict[str, dict[str, float]] = {}  # symbol -> side -> size taken from this quote
        self.lock = asyncio.Lock()
        # Ids of events JetStream acked that are still in the outbox: removed by the next
        # save's transaction (or the next flush), not by a round trip of their own.
        self.acked: list[str] = []
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

    def _place(self, w: Held) -> None:
        if not isinstance(w, Working):  # only its cancel came: never in the book
            return
        orders = self.book.setdefault(w.symbol, {})
        if w.is_open:
            orders[w.order_id] = w
        else:
            orders.pop(w.order_id, None)
        self.resting.set(sum(len(b) for b in self.book.values()))

    async def _commit(self, changes: list[tuple[Held, list[Event]]]) -> None:
        """Save the orders' states with their events (one transaction, which also takes the
        events acked before out of the outbox), then publish."""
        if not changes:
            return
        acked, self.acked = self.acked, []
        try:
            await self.store.save(changes, acked)
        except BaseException:
            self.acked[:0] = acked
            raise
        for w, _ in changes:
            self._place(w)
        await self._publish([e for _, events in changes for e in events])

    async def _publish(self, events: list[Event]) -> None:
        """All at once, in order on the wire; what JetStream acked leaves the outbox with the
        next save or flush, what it did not stays there for the next flush (the first error
        is raised after). An acked event still in the outbox when the venue dies is published
        again at its start, under its fixed id: JetStream drops it (duplicate window)."""
        if not events:
            return
        acks = await asyncio.gather(*(bus.publish_event(self.js, subject, e) for subject, e in events),
                                    return_exceptions=True)
        sent = [e for e, ack in zip(events, acks, strict=True) if not isinstance(ack, BaseException)]
        for _, event in sent:
            (self.fills_total if isinstance(event, Fill) else self.cancels_total).inc()
        self.acked.extend(e.id for _, e in sent)
        failed = next((ack for ack in acks if isinstance(ack, BaseException)), None)
        if failed is not None:
            raise failed

    async def flush_outbox(self) -> None:
        async with self.lock:
            acked, self.acked = self.acked, []
            try:
                await self.store.sent(acked)
            except BaseException:
                self.acked[:0] = acked
                raise
            pending = await self.store.outbox()
            if pending:
                log.info("venue: publishing %d events left in the outbox", len(pending))
                await self._publish(pending)

    async def on_orders(self, msgs: list[Msg]) -> None:
        """A batch of `venue.paper.order` instructions (durable consumer; redelivery is
        harmless): worked in order, saved in one transaction, their events published at once."""
        instructions: list[Order | OrderRef] = []  # an Order is new, an OrderRef a cancel
        for msg in msgs:
            try:
                instruction = bus.decode_venue_order(msg)
            except bus.Malformed:  # counted and logged by the kit; acked
                continue
            self.orders_total.labels("new" if isinstance(instruction, VenueNew) else "cancel").inc()
            instructions.append(instruction.order)
        if not instructions:
            return
        async with self.lock:
            # What the venue holds of these orders, updated as the batch is worked: a later
            # instruction of the batch sees what an earlier one did.
            ids = list({o.order_id for o in instructions})
            if any(isinstance(o, Order) for o in instructions):  # its age is judged on Valkey's clock
                known, now = await self.store.get_many_at(ids)
            else:
                known, now = await self.store.get_many(ids), 0.0
            changes: list[tuple[Held, list[Event]]] = []
            for order in instructions:
                change = (self._new(order, known, now) if isinstance(order, Order)
                          else self._cancel(order, known))
                if change is not None:
                    known[change[0].order_id] = change[0]
                    self._place(change[0])
                    changes.append(change)
            await self._commit(changes)

    def _new(self, order: Order, known: dict[str, Held | None], now_ms: float
             ) -> tuple[Held, list[Event]] | None:
        held = known.get(order.order_id)
        if held is not None:
            if isinstance(held, CancelFirst):  # its cancel overtook it
                w = Working(order=order)
                return w, [cancel(w, "cancelled before it reached the venue")]
            return None  # seen before: a redelivery
        w = Working(order=order)
        reason = validate(order)
        if reason is not None:
            return w, [cancel(w, f"rejected by the venue: {reason}")]
        quote = self.quotes.get(w.symbol)
        too_old = (stale(order, now_ms, self.max_order_age_s)
                   or quote_too_old(order, quote, self.quote_stale_s))
        if too_old is not None:
            return w, [cancel(w, too_old)]
        taken = self.taken.setdefault(w.symbol, {})
        return w, step(w, quote, taken, arrival=True)

    def _cancel(self, ref: OrderRef, known: dict[str, Held | None]
                ) -> tuple[Held, list[Event]] | None:
        order_id = ref.order_id
        w = next((b[order_id] for b in self.book.values() if order_id in b), None)
        if w is not None:
            return w, [cancel(w, "cancelled on request")]
        if known.get(order_id) is None:
            return CancelFirst(order=ref), []
        return None  # already filled or cancelled, nothing left to cancel

    async def on_quote(self, quote: Quote) -> None:
        """A new quote: fresh size, and resting orders that it crosses fill."""
        taken = self.taken[quote.symbol] = {}
        async with self.lock:
            for w in list(self.book.get(quote.symbol, {}).values()):
                events = step(w, quote, taken, arrival=False)
                if events:
                    await self._commit([(w, events)])
