"""exeq's routing: ORDERS events to venue instructions with fixed ids, as contract Structs."""

from __future__ import annotations

import pytest

from services import contract
from services.exeq.app import not_routed, route

pytestmark = pytest.mark.unit


def test_new_and_cancel_become_venue_instructions_with_fixed_ids() -> None:
    order = contract.Order(order_id="o1", symbol="BTCUSDT", side="buy", quantity=1)
    new = route(contract.OrderNew(id="o1", ts=1.0, order=order))
    assert isinstance(new, contract.VenueNew) and (new.id, new.order) == ("new-o1", order)
    assert contract.encode(new).startswith(b'{"action":"new"')  # the venue reads the tag
    cancel = route(contract.Cancel(id="cancel-o1", order_id="o1", account="a", symbol="BTCUSDT"))
    assert isinstance(cancel, contract.VenueCancel) and cancel.id == "cancel-o1"
    assert cancel.order == contract.OrderRef(order_id="o1", account="a", symbol="BTCUSDT")


def test_an_order_never_routed_is_cancelled_with_its_whole_quantity() -> None:
    order = contract.Order(order_id="o2", account="a", symbol="BTCUSDT", side="sell", quantity=3)
    done = not_routed(order)
    assert (done.id, done.order_id, done.account, done.cancelled_quantity) == ("cancelled-o2", "o2", "a", 3)
    assert "never routed" in (done.reason or "")


def test_the_way_to_a_fill_waits_no_longer_and_risk_reads_orders_new_after_it() -> None:
    """exeq batches for the path (ROUTE_LINGER_S) and the venue takes an exeq batch as it
    arrived (VENUE_LINGER_S): together no longer than the 5 ms each waited before; risk
    reads orders.new after an order that trades at once was filled and its fill read."""
    from services.kit import bus
    from services.risk.consumers import CONFIRM_LINGER_S

    assert bus.VENUE_LINGER_S < bus.ROUTE_LINGER_S <= 2 * bus.LINGER_S - bus.VENUE_LINGER_S
    assert bus.ROUTE_LINGER_S + bus.VENUE_LINGER_S + bus.FOLLOW_LINGER_S < CONFIRM_LINGER_S / 2
