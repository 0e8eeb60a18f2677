"""event-writer: the audit trail. `orders.>` and `exec.>` -> Delta tables `orders`, `fills`.

`orders` holds one row per order event, `event_type` telling which:
    new             orders.new      the order risk approved, as the OMS published it: status
                                    PENDING (it is confirmed ACCEPTED in Valkey after the
                                    publish; a rejected order is never published)
    cancel_request  orders.cancel   a cancel asked for
    cancelled       exec.cancelled  the venue confirmed the cancel (status CANCELLED)
A venue cancel changes an order's state and fills nothing, so it belongs with the order
events, not in `fills`. `fills` holds one row per `exec.fill.{SYMBOL}`. Both tables are
partitioned by UTC date. Two sinks (ORDERS and EXEC are two streams), one shared mechanism.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from services import contract
from services.kit.sink import SinkSpec, Table, date_of, sink_app

__all__ = ["FILLS", "ORDERS", "app", "exec_row", "order_row"]

ORDERS = Table(contract.ORDERS_TABLE, pa.schema([
    ("event_id", pa.string()), ("event_type", pa.string()), ("order_id", pa.string()),
    ("client_order_id", pa.string()), ("account", pa.string()), ("symbol", pa.string()),
    ("side", pa.string()), ("quantity", pa.float64()), ("order_type", pa.string()),
    ("price", pa.float64()), ("time_in_force", pa.string()), ("status", pa.string()),
    ("filled_quantity", pa.float64()), ("avg_fill_price", pa.float64()),
    ("cancelled_quantity", pa.float64()), ("risk_level", pa.string()),
    ("warnings", pa.list_(pa.string())), ("reason", pa.string()), ("created_ts", pa.float64()),
    ("ts", pa.float64()), ("date", pa.string()),
]), partition_by=("date",), key="event_id")
FILLS = Table(contract.FILLS_TABLE, pa.schema([
    ("fill_id", pa.string()), ("order_id", pa.string()), ("client_order_id", pa.string()),
    ("account", pa.string()), ("symbol", pa.string()), ("side", pa.string()),
    ("quantity", pa.float64()), ("price", pa.float64()), ("cumulative_quantity", pa.float64()),
    ("leaves_quantity", pa.float64()), ("final", pa.bool_()), ("order_ts", pa.float64()),
    ("ts", pa.float64()), ("date", pa.string()),
]), partition_by=("date",), key="fill_id")
_ORDER_COLUMNS = [f.name for f in ORDERS.schema]
_FILL_COLUMNS = [f.name for f in FILLS.schema]
_EVENT_TYPES = {contract.ORDERS_NEW: "new", contract.ORDERS_CANCEL: "cancel_request",
                contract.EXEC_CANCELLED: "cancelled"}


def order_row(subject: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    event_type = _EVENT_TYPES.get(subject)
    if event_type is None:
        return None
    fields = {**event, **(event.get("order") or {})}
    row = {name: fields.get(name) for name in _ORDER_COLUMNS}
    row.update(event_id=event["id"], event_type=event_type, ts=event["ts"], date=date_of(float(event["ts"])))
    if event_type == "cancelled":
        row["status"] = "CANCELLED"
    return ORDERS.name, row


def exec_row(subject: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    if not contract.is_fill(subject):
        return order_row(subject, event)
    row = {name: event.get(name) for name in _FILL_COLUMNS}
    row["fill_id"] = row["fill_id"] or event["id"]
    row["date"] = date_of(float(event["ts"]))
    return FILLS.name, row


app = sink_app("event-writer", [
    SinkSpec(durable=contract.TOPOLOGY["event-writer"].durable("event-writer-orders"),
             tables=[ORDERS], route=order_row),
    SinkSpec(durable=contract.TOPOLOGY["event-writer"].durable("event-writer-exec"), tables=[FILLS, ORDERS],
             route=exec_row),
])
