"""oms's consumer: order state from `exec.fill.{SYMBOL}` and `exec.cancelled`.

One durable consumer on `exec.>` (the EXEC stream), acked after the order is written.
Updates are idempotent (lifecycle keeps applied fill ids; a cancel of a terminal order is
a no-op), so a redelivery after a crash changes nothing twice.
"""

from __future__ import annotations

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

    async def handle(msg: Msg) -> None:
        event = bus.decode(msg)
        kind = "cancel" if msg.subject == contract.EXEC_CANCELLED else "fill"
        order = await store.get(str(event.get("order_id")))
        if order is None:
            if msg.metadata.num_delivered >= MAX_MISSING_DELIVERIES:
                log.warning("%s %s for unknown order %s: dropped", kind, event.get("id"),
                            event.get("order_id"))
                applied.labels(kind, "unknown_order").inc()
                return
            # Its orders.new was published while the order was being stored: try again soon.
            raise bus.Redeliver(f"order {event.get('order_id')} not stored yet")
        update = apply_cancel if kind == "cancel" else apply_fill
        if update(order, event, contract.now_ms()):
            await store.put(order)
            applied.labels(kind, "applied").inc()
        else:
            applied.labels(kind, "duplicate").inc()

    await bus.durable_consumer(kit.js, stream=contract.EXEC, durable=DURABLE,
                               subject=contract.EXEC_ALL, handle=handle)
