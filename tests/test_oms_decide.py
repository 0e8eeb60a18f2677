"""The one place an order's fate is decided (services/oms/store.py), on a real Valkey.

PENDING moves once, to ACCEPTED (the OMS, after JetStream acked the publish) or to
REJECTED (the OMS after a failed publish, or the router after PENDING_EXPIRY_S), and
whoever moves it first wins: an order the router routes is one the OMS answered 201.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from msgspec.structs import replace

from services.contract import now_ms
from services.exeq.app import routable as routable_many
from services.oms import gate
from services.oms.models import OrderRecord
from services.oms.store import PENDING_EXPIRY_S, OrderStore
from tests.helpers import Proc

pytestmark = pytest.mark.process


def _order(created_ts: float | None = None, coid: str | None = None) -> OrderRecord:
    return OrderRecord(order_id=uuid.uuid4().hex, client_order_id=coid, account="decide",
                       symbol="BTCUSDT", side="buy", quantity=1.0, order_type="MARKET", price=None,
                       status="PENDING", created_ts=created_ts or now_ms(), updated_ts=now_ms())


def _run(valkey: Proc, test: Callable[[OrderStore], Awaitable[Any]], expiry_s: float = PENDING_EXPIRY_S
         ) -> Any:
    async def main() -> Any:
        store = OrderStore(aioredis.from_url(valkey.url), claim_ttl_s=10, pending_expiry_s=expiry_s)
        try:
            return await test(store)
        finally:
            await store.valkey.aclose()

    return asyncio.run(main())


async def routable(store: OrderStore, order_id: str) -> bool | None:
    """The router's verdict on one order (None: not decided by its OMS yet), with the OMS's
    own answer to `oms.gate` (what exeq asks it over the bus)."""
    return (await routable_many(lambda ids: gate.decide(store, ids), [order_id]))[order_id]


def _gate(store: OrderStore, order_id: str) -> Awaitable[str]:
    return store.gate(order_id)


def test_accepted_once_and_the_router_sees_it(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> tuple[str, str, str, bool | None]:
        order = _order()
        await store.create(order)
        pending = await _gate(store, order.order_id)
        first = await store.decide(replace(order, status="ACCEPTED"), 201, b"{}", None)
        again = await store.decide(replace(order, status="ACCEPTED"), 201, b"{}", None)  # a retried call
        return pending, first, again, await routable(store, order.order_id)

    assert _run(valkey_server, test) == ("PENDING", "ACCEPTED", "ACCEPTED", True)


def test_a_pending_order_past_its_expiry_is_rejected_by_the_router_and_the_oms_loses(
        valkey_server: Proc) -> None:
    """The OMS that confirms too late (or never, it crashed) cannot make it routable."""

    async def test(store: OrderStore) -> tuple[bool | None, str, OrderRecord | None]:
        order = _order()
        await store.create(order)
        await asyncio.sleep(0.3)
        routed = await routable(store, order.order_id)
        late = await store.decide(replace(order, status="ACCEPTED"), 201, b"{}", None)
        return routed, late, await store.get(order.order_id)

    routed, late, stored = _run(valkey_server, test, expiry_s=0.2)
    assert routed is False and late == "REJECTED"
    assert stored is not None and stored.status == "REJECTED" and "never routed" in stored.reason


def test_expiry_is_judged_by_valkey_not_by_the_readers_clock(valkey_server: Proc) -> None:
    """A router whose clock ran 15 s ahead expired orders its OMS was still confirming."""
    from services import contract

    async def test(store: OrderStore) -> tuple[bool | None, float]:
        order = _order()
        await store.create(order)
        contract.set_clock_offset(15.0)  # the reader's clock, 15 s ahead
        try:
            return await routable(store, order.order_id), order.created_ts
        finally:
            contract.set_clock_offset(0.0)

    verdict, created = _run(valkey_server, test)
    assert verdict is None  # still PENDING: its OMS may confirm it
    assert abs(created - now_ms()) < 60_000  # created_ts is Valkey's clock, set by create


def test_the_gate_keeps_the_record_as_written(valkey_server: Proc) -> None:
    """Settling through the script rewrote `"warnings": []` as `{}` (and cut numbers to 14 digits)."""

    async def test(store: OrderStore) -> tuple[OrderRecord | None, OrderRecord]:
        order = replace(_order(), warnings=[], reason=None, price=61234.123456789012,
                        arrival_mid=61234.56789012345)
        await store.create(order)
        await asyncio.sleep(0.3)
        assert await store.gate(order.order_id) == "REJECTED"
        return await store.get(order.order_id), order

    stored, order = _run(valkey_server, test, expiry_s=0.2)
    assert stored is not None
    assert stored.warnings == [] and stored.status == "REJECTED" and "never routed" in stored.reason
    assert stored.price == order.price and stored.arrival_mid == order.arrival_mid
    assert stored.created_ts == order.created_ts and stored.updated_ts >= order.created_ts


def test_a_listing_shows_no_pending_order_past_its_expiry(valkey_server: Proc) -> None:
    """GET /orders listed PENDING records that would never be routed."""

    async def test(store: OrderStore) -> list[str]:
        order = replace(_order(), account=f"list-{uuid.uuid4().hex[:6]}")
        await store.create(order)
        await asyncio.sleep(0.3)
        return [o.status for o in await store.list(order.account, None, 10)]

    assert _run(valkey_server, test, expiry_s=0.2) == ["REJECTED"]


def test_a_publish_that_failed_is_rejected_and_never_routable(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> tuple[str, bool | None]:
        order = _order()
        await store.create(order)
        outcome = await store.decide(replace(order, status="REJECTED", reason="not published"), 503,
                                     None, None)
        return outcome, await routable(store, order.order_id)

    assert _run(valkey_server, test) == ("REJECTED", False)


def test_a_recent_pending_order_is_redelivered_not_routed(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> bool | None:
        order = _order()
        await store.create(order)
        return await routable(store, order.order_id)

    assert _run(valkey_server, test) is None


def test_a_batch_of_orders_is_gated_each_on_its_own(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> list[bool | None]:
        accepted, pending = _order(), _order()
        for order in (accepted, pending):
            await store.create(order)
        await store.decide(replace(accepted, status="ACCEPTED"), 201, b"{}", None)
        ids = [pending.order_id, "never-stored", accepted.order_id]
        verdict = await routable_many(lambda order_ids: gate.decide(store, order_ids), ids)
        return [verdict[i] for i in ids]

    assert _run(valkey_server, test) == [None, False, True]


def test_a_batch_is_gated_in_one_script_call_that_survives_a_lost_script_cache(valkey_server: Proc) -> None:
    """A Valkey restarted without its script cache: the gate loads its script again."""

    async def test(store: OrderStore) -> tuple[list[str], int]:
        orders = [_order() for _ in range(3)]
        for order in orders:
            await store.create(order)
        await store.decide(replace(orders[0], status="ACCEPTED"), 201, b"{}", None)
        await store.valkey.script_flush()
        before = (await store.valkey.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
        statuses = await store.gate_many([o.order_id for o in orders])
        after = (await store.valkey.info("commandstats"))["cmdstat_evalsha"]["calls"]
        return statuses, after - before

    statuses, calls = _run(valkey_server, test)
    assert statuses == ["ACCEPTED", "PENDING", "PENDING"]
    assert calls == 2  # refused (no script), then the one call for the batch


def test_a_record_without_a_status_is_never_routed_and_keeps_the_batch_aligned(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> list[str]:
        accepted = _order()
        await store.create(accepted)
        await store.decide(replace(accepted, status="ACCEPTED"), 201, b"{}", None)
        await store.valkey.set("oms:order:broken", b'{"order_id":"broken"}')
        return await store.gate_many(["broken", accepted.order_id])

    assert _run(valkey_server, test) == ["MISSING", "ACCEPTED"]


def test_an_order_never_stored_is_not_routed(valkey_server: Proc) -> None:
    assert _run(valkey_server, lambda store: routable(store, "never-stored")) is False


def test_a_client_order_id_taken_by_a_retry_after_the_claim_expired_keeps_one_order(
        valkey_server: Proc) -> None:
    """The first request outlived its claim; a retry claimed the id and placed its own
    order: the first one is REJECTED at acceptance, so the id maps to one order."""

    async def test(store: OrderStore) -> tuple[str, str, str | None]:
        coid = uuid.uuid4().hex
        first, retry = _order(coid=coid), _order(coid=coid)
        t1, t2 = f"d:{first.order_id}", f"d:{retry.order_id}"
        assert await store.create(first, t1) is None
        await store.valkey.delete(f"oms:coid:decide:{coid}")  # the claim expired
        assert await store.create(retry, t2) is None
        won = await store.decide(replace(retry, status="ACCEPTED"), 201, b"{}", t2)
        lost = await store.decide(replace(first, status="ACCEPTED"), 201, b"{}", t1,
                                  replace(first, status="REJECTED", reason="taken by a retry"))
        return won, lost, await store.holder("decide", coid)

    won, lost, holder = _run(valkey_server, test)
    assert (won, lost) == ("ACCEPTED", "REJECTED")
    assert holder is not None and holder.startswith("d:")


def test_a_claim_lives_seconds_and_a_retried_claim_is_still_ours(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> tuple[str | None, int, str | None, OrderRecord | None]:
        coid, token = uuid.uuid4().hex, "d:o1"
        first, other = _order(coid=coid), _order(coid=coid)
        await store.create(first, token)
        again = await store.create(first, token)  # the pool sent the script twice
        ttl = await store.valkey.ttl(f"oms:coid:decide:{coid}")
        held = await store.create(other, "e:o2")
        return again, ttl, held, await store.get(other.order_id)

    again, ttl, held, written = _run(valkey_server, test)
    assert again is None and 0 < ttl <= 10 and held == "d:o1"
    assert written is None  # the id was held: the other order was not written


def test_order_records_and_indexes_have_an_age_limit(valkey_server: Proc) -> None:
    async def test(store: OrderStore) -> tuple[int, list[str], str, str]:
        store.order_ttl = 60
        old, new = _order(), _order()
        await store.valkey.zadd("oms:idx:decide", {old.order_id: now_ms() - 3_600_000})
        await store.create(new)  # trims index entries older than the age limit
        ttl = await store.valkey.ttl(f"oms:order:{new.order_id}")
        ids = [cast(bytes, i).decode() for i in await store.valkey.zrange("oms:idx:decide", 0, -1)]
        return ttl, ids, old.order_id, new.order_id

    ttl, ids, old_id, new_id = _run(valkey_server, test)
    assert 0 < ttl <= 60
    assert new_id in ids and old_id not in ids
