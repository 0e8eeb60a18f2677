"""TCA state in Valkey, so a restart of the durable consumers loses nothing.

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

__all__ = ["SYMBOLS_KEY", "add_fills", "load_fills", "symbols"]

SYMBOLS_KEY = "tca:symbols"


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
