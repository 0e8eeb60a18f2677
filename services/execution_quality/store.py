"""TCA state in Valkey, so a restart of the durable consumers loses nothing.

    tca:order:{order_id}   JSON {symbol, side, mid, created_ts}: the arrival, set once (NX)
    tca:fills:{symbol}     sorted set of fill records by fill ts, the last `max_samples`
    tca:symbols            set of symbols with fills

A fill record is deterministic JSON (sorted keys) with the fill id in it: a redelivered
fill adds the same member again, which is a no-op. That is the idempotency by event id.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from services.kit.text import raw, text

__all__ = ["SYMBOLS_KEY", "add_fills", "get_arrivals", "load_fills", "record_arrivals", "symbols"]

SYMBOLS_KEY = "tca:symbols"
ARRIVAL_TTL_S = 7 * 24 * 3600


async def record_arrivals(valkey: aioredis.Redis, arrivals: dict[str, dict[str, Any]]) -> None:
    """Keep the first arrival seen for each order (order id -> arrival), in one round trip:
    a redelivered order keeps the original mid."""
    async with valkey.pipeline(transaction=False) as pipe:
        for order_id, arrival in arrivals.items():
            pipe.set(f"tca:order:{order_id}", orjson.dumps(arrival), nx=True, ex=ARRIVAL_TTL_S)
        await pipe.execute()


async def get_arrivals(valkey: aioredis.Redis, order_ids: list[str]) -> list[dict[str, Any] | None]:
    """The arrival of each order (None: not seen), in one round trip."""
    raws = await valkey.mget([f"tca:order:{i}" for i in order_ids]) if order_ids else []
    return [None if r is None else orjson.loads(r) for r in raws]


async def add_fills(valkey: aioredis.Redis, records: list[dict[str, Any]], max_samples: int) -> None:
    """Fill records, each symbol trimmed to its last `max_samples`: one transaction."""
    if not records:
        return
    by_symbol: dict[str, dict[bytes, float]] = {}
    for record in records:
        members = by_symbol.setdefault(record["symbol"], {})
        members[orjson.dumps(record, option=orjson.OPT_SORT_KEYS)] = float(record["ts"])
    async with valkey.pipeline(transaction=True) as pipe:
        for symbol, members in by_symbol.items():
            key = f"tca:fills:{symbol}"
            pipe.zadd(key, members)
            pipe.zremrangebyrank(key, 0, -(max_samples + 1))
        pipe.sadd(SYMBOLS_KEY, *by_symbol)
        await pipe.execute()


async def symbols(valkey: aioredis.Redis) -> list[str]:
    return sorted(text(m) for m in await valkey.smembers(SYMBOLS_KEY))


async def load_fills(valkey: aioredis.Redis, symbol: str) -> list[dict[str, Any]]:
    return [orjson.loads(raw(m)) for m in await valkey.zrange(f"tca:fills:{symbol}", 0, -1)]
