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
from services.kit.bus import FOLLOW_LINGER_S, decode, durable_consumer
from services.kit.quotes import QuoteBook

__all__ = ["fill_record", "start"]

log = logging.getLogger(__name__)


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

    async def on_orders(msgs: list[Msg]) -> None:
        arrivals: dict[str, dict[str, Any]] = {}
        for msg in msgs:
            try:
                event = decode(msg)
                order = event["order"]
                symbol, order_id, side = str(order["symbol"]).upper(), str(order["order_id"]), order["side"]
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a malformed order event: %r", exc)
                continue
            quote = quotes.get(symbol)
            arrivals.setdefault(order_id, {  # the first arrival seen is kept, as in Valkey
                "symbol": symbol, "side": side, "mid": quote.mid if quote else None,
                "created_ts": order.get("created_ts", event.get("ts"))})
        if arrivals:
            await store.record_arrivals(valkey, arrivals)

    async def on_fills(msgs: list[Msg]) -> list[Msg]:
        fills: list[tuple[Msg, dict[str, Any]]] = []
        for msg in msgs:
            try:
                fills.append((msg, decode(msg)))
            except ValueError as exc:
                log.warning("skipping a fill that is not JSON: %r", exc)
        arrivals = await store.get_arrivals(valkey, [str(f.get("order_id")) for _, f in fills])
        later, records = [], []
        for (msg, fill), arrival in zip(fills, arrivals, strict=True):
            if arrival is None and msg.metadata.num_delivered < order_wait_deliveries:
                log.info("order %s of fill %s not seen yet: redelivering later", fill.get("order_id"),
                         fill.get("id"))
                later.append(msg)
                continue
            try:
                records.append(fill_record(fill, arrival))
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("skipping a malformed fill %s: %r", fill.get("id"), exc)
                fills_total.labels("malformed").inc()
        await store.add_fills(valkey, records, max_samples)
        for record in records:
            fills_total.labels("measured" if record["slippage_bps"] is not None else "no_mid").inc()
        return later

    kit.spawn(lambda: quotes.follow(js, "execution-quality"), "quotes")
    await quotes.wait_ready()  # an arrival mid needs the quotes
    kit.spawn(lambda: durable_consumer(js, stream=ORDERS, durable="execution-quality-orders",
                               subject=ORDERS_NEW, handle_batch=on_orders, linger=FOLLOW_LINGER_S),
              "orders-consumer")
    kit.spawn(lambda: durable_consumer(js, stream=EXEC, durable="execution-quality-fills",
                               subject=FILL_ALL, handle_batch=on_fills, linger=FOLLOW_LINGER_S),
              "fills-consumer")
