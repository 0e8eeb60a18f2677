"""risk's bus work: positions from ptrc's snapshots, quotes from ticks, the `risk.check`
responder, and the working orders (services/risk/exposure.py) from `orders.new`, fills
and cancels. Both views are read in batches from their streams; the start waits (up to
`replay_timeout_s`) until both have caught up, so the first check sees every position.
The working orders are read back from Valkey first, then followed by two durable
consumers, each batch's changes written to Valkey before it is acked."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from nats.aio.msg import Msg
from prometheus_client import Counter

from services import contract
from services.kit import Kit, bus
from services.kit.text import text
from services.risk.engine import RiskEngine
from services.risk.exposure import Exposure, Working

__all__ = ["WORKING_KEY", "follow_book", "follow_working", "serve_checks"]

WORKING_KEY = "risk:working"  # hash: order id -> a confirmed working order (exposure.Working JSON)
ORDERS_DURABLE = "risk-orders"
# How long an `orders.new` waits for a batch (see follow_working): longer than an order
# that trades at once takes to its fill and risk's read of it (exeq and the venue at
# ROUTE_LINGER_S + VENUE_LINGER_S, the fill at FOLLOW_LINGER_S); what is acked later is
# only redelivered sooner.
CONFIRM_LINGER_S = 0.1
EXECUTIONS_DURABLE = "risk-executions"

log = logging.getLogger(__name__)


async def follow_book(kit: Kit, engine: RiskEngine, timeout: float) -> None:
    """Follow positions and quotes; return once both caught up (or `timeout` passed)."""
    book = engine.book
    kit.spawn(lambda: book.positions.follow(kit.js, "risk"), "risk-positions")
    kit.add_check("positions", book.positions.check)
    kit.spawn(lambda: book.quotes.follow(kit.js, "risk"), "risk-quotes")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(book.positions.ready.wait(), book.quotes.ready.wait()),
                               timeout)
    if not book.positions.ready.is_set():
        log.warning("positions not caught up in %.0fs; serving with what it has", timeout)
    log.info("positions: %d snapshots read", book.positions.snapshots)


class _Saved:
    """`risk:working` kept up to date with the confirmed working orders.

    A save writes the orders changed since the last one: one HSET of the kept ones and one
    HDEL of the released ones (a pipeline only when both: at 1-2 orders a batch, the
    pipeline's own cost was most of what a save cost); orjson encodes the dataclass as it
    is. Saves run one at a time, so the HDEL of an order never overtakes its HSET on another
    connection, and an order never written is never deleted (`written`: the ids in Valkey).
    """

    def __init__(self, kit: Kit, exposure: Exposure, written: set[str]) -> None:
        self.valkey = kit.valkey
        self.exposure = exposure
        self.written = written
        self.lock = asyncio.Lock()

    async def save(self) -> None:
        async with self.lock:
            await self._save()

    async def _save(self) -> None:
        exposure = self.exposure
        changed, exposure.changed = exposure.changed, set()
        kept: dict[str, bytes] = {}
        gone: list[str] = []
        for order_id in changed:
            held = exposure.orders.get(order_id)
            if held is not None and held.confirmed:
                kept[order_id] = orjson.dumps(held)
            elif order_id in self.written:
                gone.append(order_id)
        try:
            if kept and gone:
                async with self.valkey.pipeline(transaction=False) as pipe:
                    pipe.hset(WORKING_KEY, mapping=kept)  # type: ignore[arg-type]
                    pipe.hdel(WORKING_KEY, *gone)
                    await pipe.execute()
            elif kept:
                await self.valkey.hset(WORKING_KEY, mapping=kept)  # type: ignore[arg-type]
            elif gone:
                await self.valkey.hdel(WORKING_KEY, *gone)
        except Exception:
            exposure.changed |= changed  # written with the next batch; these are redelivered
            self.written.update(kept)  # maybe written: deleted when released
            raise
        self.written.update(kept)
        self.written.difference_update(gone)


async def follow_working(kit: Kit, engine: RiskEngine) -> None:
    """Read the working orders saved in Valkey, then follow `orders.new` and EXEC."""
    exposure = engine.exposure
    saved = await kit.valkey.hgetall(WORKING_KEY)
    exposure.load([Working(**orjson.loads(v)) for v in saved.values()])
    saved_orders = _Saved(kit, exposure, {text(k) for k in saved})
    log.info("working orders: %d read back", len(saved))

    async def on_orders(msgs: list[Msg]) -> None:
        for _, event in bus.decode_each(msgs, contract.OrderNew):
            order = event.order
            exposure.confirm(order, engine.book.price_for(order.symbol, order.side, order.price))
        await saved_orders.save()

    async def on_executions(msgs: list[Msg]) -> None:
        for msg in msgs:
            with contextlib.suppress(bus.Malformed):
                event = bus.decode_execution(msg)
                if isinstance(event, contract.Cancelled):
                    exposure.release(event.order_id)
                else:
                    exposure.fill(event, msg.metadata.sequence.stream)
        await saved_orders.save()

    # A check reserves an order in memory at once, so a later confirm changes no limit, and
    # a fill or cancel read later only holds its room longer (an order risk never checked,
    # fail-open, counts from its confirm). Executions are read at FOLLOW_LINGER_S (at 200
    # orders/s a batch holds ~5); orders.new at CONFIRM_LINGER_S, after the fills of an order
    # that trades at once: it is done by then, its confirm adds nothing, and it is never
    # written to Valkey nor deleted there (it was an HSET and an HDEL for every MARKET order).
    topology = contract.TOPOLOGY["risk"]
    kit.spawn(lambda: bus.durable_consumer(kit.js, topology.durable(ORDERS_DURABLE), handle_batch=on_orders,
                                           linger=CONFIRM_LINGER_S),
              "risk-working-orders")
    kit.spawn(lambda: bus.durable_consumer(kit.js, topology.durable(EXECUTIONS_DURABLE),
                                           handle_batch=on_executions, linger=bus.FOLLOW_LINGER_S),
              "risk-working-executions")


async def serve_checks(kit: Kit, engine: RiskEngine, checks: Counter) -> None:
    """Answer `risk.check` requests (queue group: several risk instances share the load),
    counted in `checks` by result."""

    async def on_request(msg: Msg) -> None:
        _, answer = engine.decide_raw(msg.data)
        checks.labels("nats", "approved" if answer.approved else "rejected").inc()
        await msg.respond(contract.encode(answer))

    await kit.nc.subscribe(contract.RISK_CHECK, queue=contract.RISK_QUEUE, cb=on_request)
