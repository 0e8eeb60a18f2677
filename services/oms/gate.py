"""The OMS's answer to `oms.gate` (contract.OrderGateRequest): may these orders go to the venue?

exeq asks before it routes an `orders.new`: the order's record is the OMS's own (Valkey
keys exeq's ACL user may not touch), so the OMS reads it and answers each order's status.
Asking also closes the window: a PENDING order past its expiry is made REJECTED in the
same compare-and-set, so an OMS that confirms it later cannot make it
routable (services/oms/store.py's gate).
"""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services import contract
from services.oms.store import OrderStore

__all__ = ["decide", "serve_gate"]

log = logging.getLogger(__name__)


async def decide(store: OrderStore, order_ids: list[str]) -> list[str]:
    """Each order's status after the gate (one round trip to Valkey)."""
    return await store.gate_many(order_ids)


async def serve_gate(nc: NATS, store: OrderStore) -> None:
    async def on_request(msg: Msg) -> None:
        try:
            ids = contract.decode(msg.data, contract.OrderGateRequest).order_ids
        except ValueError as exc:
            log.warning("oms.gate: an undecodable request: %s", exc)
            ids = []
        try:
            statuses = await decide(store, ids)
        except Exception as exc:  # Valkey down: no answer is no verdict (exeq asks again later)
            log.warning("oms.gate: %s: %s", type(exc).__name__, exc)
            return
        await msg.respond(contract.encode(contract.OrderGateReply(statuses=statuses)))

    await nc.subscribe(contract.ORDER_GATE, queue=contract.OMS_QUEUE, cb=on_request)
