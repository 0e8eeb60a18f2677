"""The three feeds of execution-quality.

- ticks (ordered consumer, last per symbol on start): the latest mid per symbol, in memory;
- `orders.new` (durable): the arrival of an order, with the mid at that moment;
- `exec.fill.>` (durable): a fill record with its slippage against the arrival mid and
  its order-to-fill latency (fill ts - order created_ts).

A fill whose order has not arrived yet is redelivered a few times (the two durable
consumers run independently), then recorded without slippage rather than blocking.
"""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from services.execution_quality import store
from services.execution_quality.tca import slippage_bps
from services.kit import Kit
from services.kit.bus import decode, durable_consumer
from services.kit.events import FILL, ORDERS_NEW, TICK
from services.kit.follow import DeliverPolicy, follow

__all__ = ["ArrivalNotSeen", "fill_record", "mid_of", "start"]

log = logging.getLogger(__name__)


class ArrivalNotSeen(Exception):
    """The fill's order is not recorded yet: redeliver the fill later."""


def mid_of(tick: dict[str, Any]) -> float | None:
    bid, ask = float(tick.get("bid") or 0), float(tick.get("ask") or 0)
    if bid > 0 and ask > 0:
        return (bid + ask) / 2.0
    last = float(tick.get("last") or 0)
    return last if last > 0 else None


def fill_record(fill: dict[str, Any], arrival: dict[str, Any] | None) -> dict[str, Any]:
    created = fill.get("order_ts") or (arrival or {}).get("created_ts")
    mid = (arrival or {}).get("mid")
    price = float(fill["price"])
    return {
        "id": str(fill["id"]), "order_id": fill["order_id"], "symbol": str(fill["symbol"]).upper(),
        "side": fill["side"], "quantity": float(fill["quantity"]), "price": price,
        "arrival_mid": mid, "ts": float(fill["ts"]),
        "slippage_bps": slippage_bps(fill["side"], price, mid) if mid else None,
        "latency_ms": float(fill["ts"]) - float(created) if created is not None else None,
    }


async def start(kit: Kit, max_samples: int, order_wait_deliveries: int) -> None:
    assert kit.js is not None and kit.valkey is not None
    js, valkey = kit.js, kit.valkey
    mids: dict[str, float] = kit.state.setdefault("mids", {})
    fills_total = kit.metrics.counter("tca_fills_total", "Fills measured", ("slippage",))

    def on_tick(tick: dict[str, Any], msg: Msg) -> None:
        mid = mid_of(tick)
        if mid is not None:
            mids[str(tick["symbol"]).upper()] = mid

    async def on_order(msg: Msg) -> None:
        event = decode(msg)
        order = event["order"]
        symbol = str(order["symbol"]).upper()
        await store.record_arrival(valkey, str(order["order_id"]), {
            "symbol": symbol, "side": order["side"], "mid": mids.get(symbol),
            "created_ts": order.get("created_ts", event.get("ts"))})

    async def on_fill(msg: Msg) -> None:
        fill = decode(msg)
        arrival = await store.get_arrival(valkey, str(fill["order_id"]))
        if arrival is None and msg.metadata.num_delivered < order_wait_deliveries:
            raise ArrivalNotSeen(f"order {fill['order_id']} of fill {fill['id']} not seen yet")
        record = fill_record(fill, arrival)
        await store.add_fill(valkey, record, max_samples)
        fills_total.labels("measured" if record["slippage_bps"] is not None else "no_mid").inc()

    await follow(js, TICK.format(symbol=">"), on_tick, DeliverPolicy.LAST_PER_SUBJECT)
    kit.spawn(durable_consumer(js, stream="ORDERS", durable="execution-quality-orders",
                               subject=ORDERS_NEW, handle=on_order), "orders-consumer")
    kit.spawn(durable_consumer(js, stream="EXEC", durable="execution-quality-fills",
                               subject=FILL.format(symbol=">"), handle=on_fill), "fills-consumer")
