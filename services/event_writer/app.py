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

import msgspec
import pyarrow as pa

from services import contract
from services.kit.lake import schema_of
from services.kit.sink import SinkSpec, Table, date_of, sink_app

__all__ = ["FILLS", "ORDERS", "app", "exec_row", "order_row"]

# An order event's row: the order's fields (a cancel's where it has them), which event it
# was, and when. A field added to Order, Cancel or Cancelled is a column here.
ORDERS = Table(contract.ORDERS_TABLE, schema_of(
    contract.Order, contract.Cancel, contract.Cancelled, drop=("id",),
    extra=[("event_id", pa.string()), ("event_type", pa.string()), ("date", pa.string())]),
    partition_by=("date",), key="event_id")
# A fill's row: its fields (fill_id is its event id), and the date.
FILLS = Table(contract.FILLS_TABLE, schema_of(contract.Fill, drop=("id",), extra=[("date", pa.string())]),
              partition_by=("date",), key="fill_id")


def _order_event(event_id: str, event_type: str, ts: float, fields: dict[str, Any]
                 ) -> tuple[str, dict[str, Any]]:
    return ORDERS.name, {**fields, "event_id": event_id, "event_type": event_type, "ts": ts,
                         "date": date_of(ts)}


def order_row(subject: str, event: msgspec.Struct) -> tuple[str, dict[str, Any]] | None:
    fields = {k: v for k, v in msgspec.structs.asdict(event).items() if k not in ("id", "ts")}
    match event:
        case contract.OrderNew(id=event_id, ts=ts, order=order):
            return _order_event(event_id, "new", ts, msgspec.structs.asdict(order))
        case contract.Cancel(id=event_id, ts=ts):
            return _order_event(event_id, "cancel_request", ts, fields)
        case contract.Cancelled(id=event_id, ts=ts):
            return _order_event(event_id, "cancelled", ts, {**fields, "status": "CANCELLED"})
    return None


def exec_row(subject: str, event: msgspec.Struct) -> tuple[str, dict[str, Any]] | None:
    if isinstance(event, contract.Fill):
        fields = msgspec.structs.asdict(event)
        del fields["id"]  # the same as fill_id
        return FILLS.name, {**fields, "date": date_of(event.ts)}
    return order_row(subject, event)


app = sink_app("event-writer", [
    SinkSpec(durable=contract.TOPOLOGY["event-writer"].durable("event-writer-orders"),
             tables=[ORDERS], route=order_row),
    SinkSpec(durable=contract.TOPOLOGY["event-writer"].durable("event-writer-exec"), tables=[FILLS, ORDERS],
             route=exec_row),
])
