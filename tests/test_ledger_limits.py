"""The ledger's Valkey keys are bounded (issue 13: ledger sets and lists never expired):
the blotter keeps the last `max_trades`, applied fill ids are kept `seen_keep_s`, and the
keys of an idle account expire; positions stay, and each fill is still applied once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from services.contract import Fill
from services.kit.ledger import Ledger
from tests.helpers import Proc

pytestmark = pytest.mark.process


def _fill(account: str, n: int) -> Fill:
    return Fill(id=f"f{n}", fill_id=f"f{n}", order_id=f"o{n}", account=account, symbol="BTCUSDT",
                side="buy", quantity=1.0, price=100.0, ts=1.0)


def test_blotter_is_capped_seen_ids_age_out_and_positions_stay(valkey_server: Proc) -> None:
    account = f"limits-{uuid.uuid4().hex[:6]}"

    async def main() -> tuple[int, int, int, float, int]:
        valkey = aioredis.from_url(valkey_server.url)
        ledger = Ledger(valkey, f"lim-{account}", max_trades=3, seen_keep_s=3600)
        await ledger.apply_batch([(i, _fill(account, i)) for i in range(1, 6)])
        await ledger.apply_batch([(6, _fill(account, 1))])  # fill f1 again, under a new seq
        count, _ = await ledger.trades(account, 100)
        seen_key = f"lim-{account}:seenz:{account}"
        seen = await valkey.zcard(seen_key)
        ttl = await valkey.ttl(seen_key)
        position = (await ledger.positions(account))["BTCUSDT"].quantity
        ledger.seen_keep_s = 0  # every applied id is now older than the limit
        await ledger.apply_batch([(7, _fill(account, 7))])
        left = await valkey.zcard(seen_key)
        await valkey.aclose()
        return count, seen, ttl, position, left

    count, seen, ttl, position, left = asyncio.run(main())
    assert count == 3  # the last 3 trades
    assert seen == 5 and 0 < ttl <= 3600
    assert position == 5.0  # f1 applied once
    assert left <= 1


def test_trades_come_back_typed_and_earlier_ones_still_read(valkey_server: Proc) -> None:
    """The blotter holds Trade JSON (the fill's fields and what it realized), in the keys the
    dict-based ledger wrote, so a blotter written before reads the same."""
    import orjson

    from services.kit.ledger import Trade

    account = f"typed-{uuid.uuid4().hex[:6]}"

    async def main() -> list[Trade]:
        valkey = aioredis.from_url(valkey_server.url)
        try:
            ledger = Ledger(valkey, f"typ-{account}")
            await valkey.rpush(f"typ-{account}:trades:{account}", orjson.dumps({
                "fill_id": "old", "order_id": "o0", "client_order_id": None, "account": account,
                "symbol": "BTCUSDT", "side": "sell", "quantity": 2, "price": 90.0, "ts": 0.5,
                "realized": None}))
            await ledger.apply_batch([(1, _fill(account, 1))])
            return (await ledger.trades(account, 10))[1]
        finally:
            await valkey.aclose()

    old, new = asyncio.run(main())
    assert (old.fill_id, old.quantity, old.side) == ("old", 2.0, "sell")
    assert (new.fill_id, new.order_id, new.price, new.realized) == ("f1", "o1", 100.0, 0.0)
