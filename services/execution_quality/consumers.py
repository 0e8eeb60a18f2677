"""The three feeds of execution-quality.

- ticks (the kit's QuoteBook: last tick per symbol on start, then live): the latest mid;
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

from services.contract import EXEC, FILL_ALL, ORDERS, ORDERS_NEW
from services.execution_quality import store
from services.execution_quality.tca import slippage_bps
from services.kit import Kit
from services.kit.bus import Redeliver, decode, durable_consumer
from services.kit.quotes import QuoteBook

__all__ = ["ArrivalNotSeen", "fill_record", "start"]

log = logging.getLogger(__name__)


class ArrivalNotSeen(Redeliver):
    """The fill's order is not recorded yet: redeliver the fill later."""


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


async def start(kit: Kit, quotes: QuoteBook, max_samples: int, order_wait_deliveries: int) -> None:
    """Follow `quotes` and start both durable consumers (see the module's docstring)."""
    js, valkey = kit.js, kit.valkey
    fills_total = kit.metrics.counter("tca_fills_total", "Fills measured", ("slippage",))

    async def on_order(msg: Msg) -> None:
        try:
            event = decode(msg)
            order = event["order"]
            symbol, order_id, side = str(order["symbol"]).upper(), str(order["order_id"]), order["side"]
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping a malformed order event: %r", exc)
            return
        quote = quotes.get(symbol)
        await store.record_arrival(valkey, order_id, {
            "symbol": symbol, "side": side, "mid": quote.mid if quote else None,
            "created_ts": order.get("created_ts", event.get("ts"))})

    async def on_fill(msg: Msg) -> None:
        try:
            fill = decode(msg)
        except ValueError as exc:
            log.warning("skipping a fill that is not JSON: %r", exc)
            return
        arrival = await store.get_arrival(valkey, str(fill.get("order_id")))
        if arrival is None and msg.metadata.num_delivered < order_wait_deliveries:
            raise ArrivalNotSeen(f"order {fill.get('order_id')} of fill {fill.get('id')} not seen yet")
        try:
            record = fill_record(fill, arrival)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("skipping a malformed fill %s: %r", fill.get("id"), exc)
            fills_total.labels("malformed").inc()
            return
        await store.add_fill(valkey, record, max_samples)
        fills_total.labels("measured" if record["slippage_bps"] is not None else "no_mid").inc()

    kit.spawn(lambda: quotes.follow(js, "execution-quality"), "quotes")
    await quotes.wait_ready()  # an arrival mid needs the quotes
    kit.spawn(lambda: durable_consumer(js, stream=ORDERS, durable="execution-quality-orders",
                               subject=ORDERS_NEW, handle=on_order), "orders-consumer")
    kit.spawn(lambda: durable_consumer(js, stream=EXEC, durable="execution-quality-fills",
                               subject=FILL_ALL, handle=on_fill), "fills-consumer")
