"""What a running oms holds, built by its lifespan (services/oms/app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.auth import AccountScope
from services.oms.entry import OrderEntry
from services.oms.store import OrderStore

__all__ = ["OmsState"]


@dataclass(frozen=True, slots=True)
class OmsState:
    store: OrderStore
    entry: OrderEntry  # POST /orders, shared by the fast path and the documented route
    scope: AccountScope  # which account a caller may act for
