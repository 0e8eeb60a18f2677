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

__all__ = ["SYMBOLS_KEY", "add_fill", "get_arrival", "load_fills", "record_arrival", "symbols"]

SYMBOLS_KEY = "tca:symbols"
ARRIVAL_TTL_S = 7 * 24 * 3600


async def record_arrival(valkey: aioredis.Redis, order_id: str, arrival: dict[str, Any]) -> bool:
    """Keep the first arrival seen for an order; a redelivered order keeps the original mid."""
    return bool(await valkey.set(f"tca:order:{order_id}", orjson.dumps(arrival), nx=True,
                                 ex=ARRIVAL_TTL_S))


async def get_arrival(valkey: aioredis.Redis, order_id: str) -> dict[str, Any] | None:
    raw = await valkey.get(f"tca:order:{order_id}")
    return None if raw is None else orjson.loads(raw)


async def add_fill(valkey: aioredis.Redis, record: dict[str, Any], max_samples: int) -> None:
    key = f"tca:fills:{record['symbol']}"
    async with valkey.pipeline(transaction=True) as pipe:
        pipe.zadd(key, {orjson.dumps(record, option=orjson.OPT_SORT_KEYS): float(record["ts"])})
        pipe.zremrangebyrank(key, 0, -(max_samples + 1))
        pipe.sadd(SYMBOLS_KEY, record["symbol"])
        await pipe.execute()


async def symbols(valkey: aioredis.Redis) -> list[str]:
    return sorted(text(m) for m in await valkey.smembers(SYMBOLS_KEY))


async def load_fills(valkey: aioredis.Redis, symbol: str) -> list[dict[str, Any]]:
    return [orjson.loads(raw(m)) for m in await valkey.zrange(f"tca:fills:{symbol}", 0, -1)]
