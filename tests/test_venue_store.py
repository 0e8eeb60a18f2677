"""The venue's store reads a batch's orders and Valkey's clock together (one pipeline)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from services.live_gateway.matching import Working
from services.live_gateway.store import VenueStore
from tests.helpers import Proc

pytestmark = pytest.mark.process


def test_orders_and_the_clock_together(fresh_valkey: Proc) -> None:
    async def run() -> None:
        valkey = aioredis.from_url(fresh_valkey.url)
        try:
            store = VenueStore(valkey)
            order = Working({"order_id": "o1", "symbol": "X", "side": "buy", "quantity": 1})
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
