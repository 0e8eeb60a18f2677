"""Order state from execution events, as pure functions on the order record.

Each returns True when it changed the order. Applying the same fill twice is a no-op
(the record keeps the ids of the fills it applied), so a redelivered event is harmless.
    ACCEPTED -> PARTIALLY_FILLED -> FILLED;  ACCEPTED | PARTIALLY_FILLED -> CANCELLED
"""

from __future__ import annotations

from services.contract import TERMINAL_STATUSES, Cancelled, Fill
from services.oms.models import OrderRecord

__all__ = ["apply_cancel", "apply_fill"]

EPS = 1e-9


def apply_fill(order: OrderRecord, fill: Fill, now: float) -> bool:
    if fill.fill_id in order.fill_ids:
        return False
    qty, price = fill.quantity, fill.price
    done = order.filled_quantity
    total = done + qty
    order.avg_fill_price = ((order.avg_fill_price or 0.0) * done + price * qty) / total
    order.filled_quantity = total
    order.fill_ids.append(fill.fill_id)
    if order.status != "CANCELLED":
        full = total >= order.quantity - EPS or (fill.final and not fill.leaves_quantity)
        order.status = "FILLED" if full else "PARTIALLY_FILLED"
    order.updated_ts = now
    return True


def apply_cancel(order: OrderRecord, event: Cancelled, now: float) -> bool:
    if order.status in TERMINAL_STATUSES:
        return False
    order.status = "CANCELLED"
    order.cancelled_quantity = event.cancelled_quantity or order.quantity - order.filled_quantity
    order.reason = event.reason or "cancelled"
    order.updated_ts = now
    return True
