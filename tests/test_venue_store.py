"""The venue's store reads a batch's orders and Valkey's clock together (one pipeline)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
import redis.asyncio as aioredis

from services.contract import Order
from services.live_gateway.matching import Working
from services.live_gateway.store import VenueStore
from tests.helpers import Proc

pytestmark = pytest.mark.process


def test_orders_and_the_clock_together(fresh_valkey: Proc) -> None:
    async def run() -> None:
        valkey = aioredis.from_url(fresh_valkey.url)
        try:
            store = VenueStore(valkey)
            order = Working(order=Order(order_id="o1", symbol="X", side="buy", quantity=1))
            await store.save([(order, [])])
            before = await store.now_ms()
            calls = int((await valkey.info("stats"))["total_commands_processed"])
            known, now = await store.get_many_at(["o1", "o2"])
            # MGET and TIME (one pipeline), and the INFO that counts them: nothing else
            assert int((await valkey.info("stats"))["total_commands_processed"]) - calls == 3
            assert known == await store.get_many(["o1", "o2"]) and known["o2"] is None
            assert known["o1"] is not None and known["o1"].order_id == "o1"
            assert before <= now <= await store.now_ms()
            nothing, clock = await store.get_many_at([])
            assert nothing == {} and clock >= now
        finally:
            await valkey.aclose()

    asyncio.run(run())


def test_orders_and_events_come_back_typed_and_earlier_records_still_read(fresh_valkey: Proc) -> None:
    """The venue's records are Structs from the decoder to Valkey and back, in the JSON shape
    it always wrote ({order, filled, fills, status}; the outbox {subject, event})."""
    import orjson

    from services.contract import Cancelled, Fill, OrderRef
    from services.live_gateway.matching import CancelFirst, cancel

    async def run() -> None:
        valkey = aioredis.from_url(fresh_valkey.url)
        try:
            store = VenueStore(valkey)
            working = Working(order=Order(order_id="w1", symbol="X", side="sell", quantity=2, price=5.0))
            first = CancelFirst(order=OrderRef(order_id="c1", account="a", symbol="X"))
            await store.save([(working, [cancel(working, "test")]), (first, [])])
            got = await store.get_many(["w1", "c1"])
            assert got["w1"] == working and got["c1"] == first
            stored = orjson.loads(cast(bytes, await valkey.get("venue:order:c1")))
            assert set(stored) == {"order", "filled", "fills", "status"}
            [(subject, event)] = await store.outbox()
            assert subject == "exec.cancelled" and isinstance(event, Cancelled) and event.reason == "test"
            # written by the dict-based venue before the records were typed
            await valkey.set("venue:order:old", orjson.dumps({
                "order": {"order_id": "old", "account": "a", "symbol": "X", "side": "buy", "quantity": 1,
                          "order_type": "MARKET", "created_ts": 1.0}, "filled": 1, "fills": 1,
                "status": "FILLED"}))
            await valkey.set("venue:order:oldc", orjson.dumps({
                "order": {"order_id": "oldc", "account": "a", "symbol": "X"}, "filled": 0.0, "fills": 0,
                "status": "CANCEL_PENDING"}))
            await valkey.hset("venue:outbox", "old-1", orjson.dumps({"subject": "exec.fill.X", "event": {
                "id": "old-1", "fill_id": "old-1", "order_id": "old", "symbol": "X", "side": "buy",
                "quantity": 1, "price": 5.0, "ts": 0.5}}))
            old = await store.get_many(["old", "oldc"])
            done = old["old"]
            assert isinstance(done, Working) and done.status == "FILLED" and done.leaves == 0
            assert isinstance(old["oldc"], CancelFirst)
            assert [type(e) for _, e in await store.outbox()] == [Fill, Cancelled]  # oldest first
        finally:
            await valkey.aclose()

    asyncio.run(run())


def test_a_save_takes_the_events_sent_before_out_of_the_outbox(fresh_valkey: Proc) -> None:
    from services.live_gateway.matching import cancel

    async def run() -> tuple[list[str], list[str]]:
        valkey = aioredis.from_url(fresh_valkey.url)
        try:
            store = VenueStore(valkey)
            a = Working(order=Order(order_id="a", symbol="X", side="buy", quantity=1))
            b = Working(order=Order(order_id="b", symbol="X", side="buy", quantity=1))
            await store.save([(a, [cancel(a, "one")])])
            kept = [e.id for _, e in await store.outbox()]
            await store.save([(b, [cancel(b, "two")])], sent=kept)  # a's event was acked meanwhile
            return kept, [e.id for _, e in await store.outbox()]
        finally:
            await valkey.aclose()

    assert asyncio.run(run()) == (["cancelled-a"], ["cancelled-b"])
