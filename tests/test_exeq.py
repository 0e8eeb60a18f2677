"""exeq's routing: ORDERS events to venue instructions with fixed ids."""

from __future__ import annotations

import pytest

from services.exeq.app import route

pytestmark = pytest.mark.unit


def test_new_and_cancel_become_venue_instructions_with_fixed_ids() -> None:
    order = {"order_id": "o1", "symbol": "BTCUSDT", "side": "buy", "quantity": 1}
    new = route("orders.new", {"id": "o1", "ts": 1.0, "order": order})
    assert new is not None and (new["id"], new["action"], new["order"]) == ("new-o1", "new", order)
    cancel = route("orders.cancel", {"id": "cancel-o1", "order_id": "o1", "account": "a",
                                     "symbol": "BTCUSDT"})
    assert cancel is not None and cancel["id"] == "cancel-o1" and cancel["action"] == "cancel"
    assert cancel["order"] == {"order_id": "o1", "account": "a", "symbol": "BTCUSDT"}


def test_nothing_to_route() -> None:
    assert route("orders.new", {"id": "x"}) is None
    assert route("orders.cancel", {"id": "x"}) is None
    assert route("orders.status", {"order_id": "o1"}) is None
