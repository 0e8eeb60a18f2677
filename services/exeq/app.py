"""exeq: routes accepted orders and cancels to the venue.

One durable consumer reads the ORDERS stream (`orders.>`) in order, so an order's cancel
never overtakes it, and republishes each instruction on `venue.paper.order` with a fixed
id (`new-{order_id}`, `cancel-{order_id}`): a redelivered order is dropped by JetStream's
duplicate window, and the venue itself recognises an order it has seen.

An `orders.new` is routed only when the OMS says it accepted the order: exeq asks it on
`oms.gate` (services/oms/gate.py; the record is the OMS's own, in Valkey keys exeq may
not read). An order the OMS answered 503 is REJECTED there, or still PENDING past its
expiry and made REJECTED by the asking, and never reaches the venue. A PENDING order is
asked about again after a few milliseconds (its OMS is confirming it right now), then
redelivered. An order that will never be routed is answered on `exec.cancelled` (id
`cancelled-{order_id}`, as the venue would), so what counted it as working (risk)
lets it go; its OMS record is REJECTED already and stays so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services import contract
from services.contract import (
    EXEC_CANCELLED,
    ORDERS_NEW,
    TOPOLOGY,
    VENUE_ORDER,
    Cancel,
    Cancelled,
    Order,
    OrderNew,
    OrderRef,
    VenueCancel,
    VenueNew,
    now_ms,
)
from services.kit import Kit, KitSettings, bus, create_app

__all__ = ["Gate", "app", "ask_oms", "routable", "route"]

log = logging.getLogger(__name__)


class ExeqSettings(KitSettings):
    service: str = "exeq"
    gate_timeout_s: float = 1.0  # how long an `oms.gate` answer is waited for


# Each order's status as its OMS decides it (services/oms/gate.py), in the order asked.
Gate = Callable[[list[str]], Awaitable[list[str]]]


def ask_oms(nc: NATS, timeout: float) -> Gate:
    """The gate over the bus; an OMS that does not answer, or answers something else, raises
    (the batch is redelivered: nothing is routed without the OMS's word)."""

    async def gate(order_ids: list[str]) -> list[str]:
        request = contract.encode(contract.OrderGateRequest(order_ids=order_ids))
        reply = await nc.request(contract.ORDER_GATE, request, timeout=timeout)
        statuses = contract.decode(reply.data, contract.OrderGateReply).statuses
        if len(statuses) != len(order_ids):
            raise ValueError(f"oms.gate answered {len(statuses)} statuses for {len(order_ids)} orders")
        return statuses

    return gate


def route(event: OrderNew | Cancel) -> VenueNew | VenueCancel:
    """The venue instruction for an ORDERS event."""
    if isinstance(event, OrderNew):
        return VenueNew(id=f"new-{event.order.order_id}", ts=now_ms(), order=event.order)
    return VenueCancel(id=f"cancel-{event.order_id}", ts=now_ms(),
                       order=OrderRef(order_id=event.order_id, account=event.account, symbol=event.symbol))


def not_routed(order: Order) -> Cancelled:
    """The `exec.cancelled` event for an order that will never reach the venue."""
    return Cancelled(id=f"cancelled-{order.order_id}", ts=now_ms(), order_id=order.order_id,
                     account=order.account, symbol=order.symbol, cancelled_quantity=order.quantity,
                     reason="never routed: the oms did not accept it")


ROUTABLE = frozenset({"ACCEPTED", "PARTIALLY_FILLED"})
WAITS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)  # a PENDING order: look again after these


async def routable(gate: Gate, order_ids: list[str]) -> dict[str, bool | None]:
    """May each order go to the venue? None for one its OMS has not decided yet (to be
    redelivered). The orders still PENDING are asked about again after each of WAITS_S."""
    verdict: dict[str, bool | None] = {}
    waiting = list(dict.fromkeys(order_ids))
    for wait in (*WAITS_S, None):
        if not waiting:
            break
        statuses = await gate(waiting)
        verdict.update({i: s in ROUTABLE for i, s in zip(waiting, statuses, strict=True) if s != "PENDING"})
        waiting = [i for i, s in zip(waiting, statuses, strict=True) if s == "PENDING"]
        if not waiting or wait is None:
            break
        await asyncio.sleep(wait)
    verdict.update(dict.fromkeys(waiting))
    return verdict


async def _publish(js: Any, event: VenueNew | VenueCancel | Cancelled) -> int:
    return await bus.publish_event(js, EXEC_CANCELLED if isinstance(event, Cancelled) else VENUE_ORDER, event)


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[None]:
    js = kit.js
    routed = kit.metrics.counter("exeq_routed_total", "Instructions routed to the venue", ("action",))
    dropped = kit.metrics.counter("exeq_dropped_total", "ORDERS events with nothing to route")
    unconfirmed = kit.metrics.counter("exeq_unconfirmed_total",
                                      "new orders not routed: the OMS did not accept them")
    gate = ask_oms(kit.nc, kit.settings_as(ExeqSettings).gate_timeout_s)

    async def handle(msgs: list[Msg]) -> list[Msg]:
        instructions: list[tuple[Msg, VenueNew | VenueCancel]] = []
        for msg in msgs:
            try:
                event = bus.decode(msg, OrderNew) if msg.subject == ORDERS_NEW else bus.decode(msg, Cancel)
            except bus.Malformed:  # counted and logged by the kit: nothing to route, ever
                dropped.inc()
                continue
            instructions.append((msg, route(event)))
        verdict = await routable(gate, [i.order.order_id for _, i in instructions if isinstance(i, VenueNew)])
        later: list[Msg] = []
        out: list[tuple[Msg, VenueNew | VenueCancel | Cancelled]] = []
        for msg, instruction in instructions:
            if isinstance(instruction, VenueNew) and verdict[instruction.order.order_id] is None:
                log.info("exeq: order %s is not confirmed by the oms yet; redelivering later",
                         instruction.order.order_id)
                later.append(msg)
            elif isinstance(instruction, VenueNew) and not verdict[instruction.order.order_id]:
                log.info("exeq: order %s not accepted by the oms: not routed", instruction.order.order_id)
                unconfirmed.inc()
                out.append((msg, not_routed(instruction.order)))
            else:
                out.append((msg, instruction))
        # All at once, in order on the wire; each keeps its fixed id, so one that is published
        # again (its message redelivered after a failure) is dropped by JetStream.
        sent = await asyncio.gather(*(_publish(js, e) for _, e in out), return_exceptions=True)
        for (msg, published), result in zip(out, sent, strict=True):
            if isinstance(result, BaseException):
                log.warning("exeq: %s not published (%s); redelivering", published.id, result)
                later.append(msg)
            elif not isinstance(published, Cancelled):
                routed.labels("new" if isinstance(published, VenueNew) else "cancel").inc()
        return later

    kit.spawn(lambda: bus.durable_consumer(js, TOPOLOGY["exeq"].durable("exeq"), handle_batch=handle,
                                         linger=bus.ROUTE_LINGER_S),
              "exeq-orders")
    yield


app = create_app("exeq", settings=ExeqSettings(),
                 lifespan=lifespan)
