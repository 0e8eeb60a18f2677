"""The online store in Valkey.

    features:{symbol}        hash: one field per feature, each value JSON (null kept)
    features:{symbol}:bars   sorted set of the last window + 1 bars, scored by bar start
    features:symbols         set of the symbols with features

A bar is stored by its start: a redelivered or republished bar replaces itself, so the
consumer is idempotent by bar id (`{SYMBOL}-{interval}-{start}`).
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis

from services import contract
from services.contract import Bar
from services.kit.text import text

__all__ = ["SYMBOLS_KEY", "add_bar", "load_features", "save_features"]

SYMBOLS_KEY = "features:symbols"


def _bars_key(symbol: str) -> str:
    return f"features:{symbol}:bars"


async def add_bar(valkey: aioredis.Redis, bar: Bar, window: int) -> list[Bar]:
    """Store one bar, keep the last window + 1, return them oldest first."""
    key, start = _bars_key(bar.symbol), bar.start
    async with valkey.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, start, start)
        pipe.zadd(key, {contract.encode(bar): start})
        pipe.zremrangebyrank(key, 0, -(window + 2))
        pipe.zrange(key, 0, -1)
        *_, members = await pipe.execute()
    return [contract.decode(m, Bar) for m in members]


async def save_features(valkey: aioredis.Redis, features: dict[str, Any]) -> None:
    symbol = features["symbol"]
    async with valkey.pipeline(transaction=True) as pipe:
        pipe.hset(f"features:{symbol}", mapping={k: orjson.dumps(v) for k, v in features.items()})
        pipe.sadd(SYMBOLS_KEY, symbol)
        await pipe.execute()


async def load_features(valkey: aioredis.Redis, symbol: str) -> dict[str, Any] | None:
    raw = await valkey.hgetall(f"features:{symbol}")
    if not raw:
        return None
    return {text(k): orjson.loads(v) for k, v in raw.items()}
