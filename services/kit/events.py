"""The events on the bus: subjects and payloads, one place for every service.

All payloads are JSON objects with an `id` (the event id: consumers deduplicate on it,
and publishers set it as Nats-Msg-Id) and `ts` (epoch milliseconds, float).

    market.tick.{SYMBOL}          Tick:   id="{SYMBOL}-{seq}", symbol, seq, bid, ask, last,
                                          bid_size, ask_size, volume (traded this tick), ts
    market.bar.{interval}.{SYMBOL} Bar:   id="{SYMBOL}-{interval}-{start}", symbol, interval
                                          ("1m"|"5m"), start, end (epoch ms), open, high,
                                          low, close, volume, trades, ts
    alt.news.{SYMBOL}             AltEvent: id, symbol, category ("news"), headline,
                                          sentiment (-1..1), source, ts
    orders.new                    {id=order_id, ts, order: Order}
    orders.cancel                 {id="cancel-{order_id}", ts, order_id, account, symbol}
    venue.paper.order             {id, ts, action: "new"|"cancel", order: Order}  (exeq -> venue)
    exec.fill.{SYMBOL}            Fill:   id=fill_id, fill_id, order_id, client_order_id,
                                          account, symbol, side, quantity, price,
                                          cumulative_quantity, leaves_quantity, final (bool),
                                          order_ts (order creation), ts
    exec.cancelled                {id="cancelled-{order_id}", ts, order_id, account, symbol,
                                   cancelled_quantity, reason}
    risk.check  (request/reply)   request {account, symbol, side, quantity, price?}
                                  reply   {approved, risk_level, reason?, warnings[]}

Valkey (written by normalizer):
    bars:{interval}:{SYMBOL}      list of the latest closed Bars as JSON, newest first (LRANGE 0 N)

Order: order_id, client_order_id, account, symbol, side ("buy"|"sell"), quantity,
order_type ("MARKET"|"LIMIT"), price (null for MARKET), time_in_force ("GTC"|"IOC"|"DAY"),
status ("ACCEPTED"|"REJECTED"|"PARTIALLY_FILLED"|"FILLED"|"CANCELLED"), filled_quantity,
avg_fill_price, risk_level, warnings, reason, created_ts, updated_ts.
"""

from __future__ import annotations

import time

__all__ = [
    "ALT",
    "BAR",
    "BARS_KEY",
    "EXEC_CANCELLED",
    "FILL",
    "ORDERS_CANCEL",
    "ORDERS_NEW",
    "RISK_CHECK",
    "TICK",
    "VENUE_ORDER",
    "now_ms",
]

TICK = "market.tick.{symbol}"
BAR = "market.bar.{interval}.{symbol}"
BARS_KEY = "bars:{interval}:{symbol}"
ALT = "alt.news.{symbol}"
ORDERS_NEW = "orders.new"
ORDERS_CANCEL = "orders.cancel"
VENUE_ORDER = "venue.paper.order"
FILL = "exec.fill.{symbol}"
EXEC_CANCELLED = "exec.cancelled"
RISK_CHECK = "risk.check"


def now_ms() -> float:
    return time.time() * 1000.0
