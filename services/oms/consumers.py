"""oms's consumer: order state from `exec.fill.{SYMBOL}` and `exec.cancelled`.

One durable consumer on `exec.>` (the EXEC stream), a batch at a time: the orders read
in one round trip, the changed ones written in one, then acked.
Updates are idempotent (lifecycle keeps applied fill ids; a cancel of a terminal order is
a no-op), so a redelivery after a crash changes nothing twice.
"""

from __future__ import annotations

import contextlib
import logging

from nats.aio.msg import Msg

from services import contract
from services.kit import Kit, bus
from services.oms.lifecycle import apply_cancel, apply_fill
from services.oms.store import OrderStore

__all__ = ["DURABLE", "follow_executions"]

log = logging.getLogger(__name__)

DURABLE = "oms-executions"
MAX_MISSING_DELIVERIES = 10  # an event for an order this oms never stored: give up after this


async def follow_executions(kit: Kit, store: OrderStore) -> None:
    applied = kit.metrics.counter("oms_execution_events_total", "execution events by kind and effect",
                                  ("kind", "effect"))

    async def handle(msgs: list[Msg]) -> list[Msg]:
        events: list[tuple[Msg, contract.Fill | contract.Cancelled]] = []
        for msg in msgs:
            with contextlib.suppress(bus.Malformed):  # counted and logged by the kit; acked
                events.append((msg, bus.decode_execution(msg)))
        orders = await store.get_many(list({e.order_id for _, e in events}))
        later, changed, now = [], {}, contract.now_ms()
        effects: list[tuple[str, str]] = []  # counted once the batch is written
        for msg, event in events:  # in stream order: fills of one order add up in turn
            kind = "fill" if isinstance(event, contract.Fill) else "cancel"
            order = orders.get(event.order_id)
            if order is None:
                if msg.metadata.num_delivered >= MAX_MISSING_DELIVERIES:
                    log.warning("%s %s for unknown order %s: dropped", kind, event.id, event.order_id)
                    effects.append((kind, "unknown_order"))
                else:  # its orders.new was published while the order was being stored: soon
                    later.append(msg)
                continue
            moved = (apply_fill(order, event, now) if isinstance(event, contract.Fill)
                     else apply_cancel(order, event, now))
            if moved:
                changed[order.order_id] = order
            effects.append((kind, "applied" if moved else "duplicate"))
        await store.put_many(list(changed.values()))
        for kind, effect in effects:
            applied.labels(kind, effect).inc()
        return later

    # The status follows the fill; nothing on the way to the fill waits on it.
    await bus.durable_consumer(kit.js, contract.TOPOLOGY["oms"].durable(DURABLE),
                               handle_batch=handle, linger=bus.FOLLOW_LINGER_S)
