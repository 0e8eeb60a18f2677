"""The two feeds of execution-quality.

- ticks (the kit's QuoteBook: last tick per symbol on start, then live): the latest mid,
  for `/tca` and `/tca/mids`;
- `exec.fill.>` (durable): a fill record with its slippage against the arrival mid and
  its order-to-fill latency (fill ts - order created_ts). Both come on the fill: risk
  answers each check with the symbol's mid, the OMS keeps it on the order as
  `arrival_mid`, and the venue copies it (and `order_ts`) onto every fill. So a fill is
  measured alone, the moment it arrives, with the mid of the moment its order arrived.
  (Before, a second consumer read `orders.new` to note the mid, a fill that overtook its
  order waited for it through redeliveries, and every order cost one more delivery; its
  durable is retired in services.contract.TOPOLOGY.)
"""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from services.contract import TOPOLOGY, Fill
from services.execution_quality import store
from services.execution_quality.tca import slippage_bps
from services.kit import Kit
from services.kit.bus import FOLLOW_LINGER_S, decode_each, durable_consumer
from services.kit.quotes import QuoteBook

__all__ = ["fill_record", "start"]

log = logging.getLogger(__name__)

def fill_record(fill: Fill) -> dict[str, Any]:
    created, mid = fill.order_ts, fill.arrival_mid
    return {
        "id": fill.id, "order_id": fill.order_id, "symbol": fill.symbol.upper(),
        "side": fill.side, "quantity": fill.quantity, "price": fill.price,
        "arrival_mid": mid, "ts": fill.ts,
        "slippage_bps": slippage_bps(fill.side, fill.price, mid) if mid else None,
        "latency_ms": fill.ts - created if created is not None else None,
    }


async def start(kit: Kit, quotes: QuoteBook, max_samples: int) -> None:
    """Follow `quotes` and start the fills consumer (see the module's docstring)."""
    js, valkey = kit.js, kit.valkey
    fills_total = kit.metrics.counter("tca_fills_total", "Fills measured", ("slippage",))

    async def on_fills(msgs: list[Msg]) -> None:
        records = [fill_record(fill) for _, fill in decode_each(msgs, Fill)]  # the kit drops malformed ones
        await store.add_fills(valkey, records, max_samples)
        for record in records:
            fills_total.labels("measured" if record["slippage_bps"] is not None else "no_mid").inc()

    kit.spawn(lambda: quotes.follow(js, "execution-quality"), "quotes")
    kit.spawn(lambda: durable_consumer(js, TOPOLOGY["execution-quality"].durable("execution-quality-fills"),
                               handle_batch=on_fills, linger=FOLLOW_LINGER_S),
              "fills-consumer")
