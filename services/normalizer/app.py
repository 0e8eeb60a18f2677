"""normalizer: ticks -> OHLCV bars at 1m and 5m (services/normalizer/bars.py).

Consumes `market.tick.>` (durable consumer "normalizer"); each closed bar is published on
`market.bar.{interval}.{SYMBOL}` (Nats-Msg-Id = bar id, so a replay publishes it once)
and kept in Valkey:

    bars:{interval}:{SYMBOL}   list of the latest closed bars as JSON, newest first,
                               at most TRADE_OPS_BARS_KEPT (500); see contract.BARS_KEY

`GET /bars/{symbol}?interval=1m&limit=N` answers the bar still open (from memory) and the
latest closed ones (from Valkey); 404 for a symbol never seen, 422 for a bad interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import msgspec
import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from nats.aio.msg import Msg

from services import contract
from services.contract import BARS_KEY, Bar, now_ms
from services.kit import Check, FollowerSettings, Kit, bus, create_app, get_kit, service_state
from services.normalizer.bars import INTERVALS, BarBuilder

__all__ = ["app", "bars_key"]

log = logging.getLogger(__name__)


class NormalizerSettings(FollowerSettings):
    bars_kept: int = 500
    bar_grace_ms: float = 2_000.0


def bars_key(interval: str, symbol: str) -> str:
    return BARS_KEY.format(interval=interval, symbol=symbol)


class Normalizer:
    def __init__(self, kit: Kit, settings: NormalizerSettings) -> None:
        self.kit, self.settings = kit, settings
        self.builders = {i: BarBuilder(i, settings.bar_grace_ms) for i in INTERVALS}
        self.ticks = 0
        self.unsent: list[Bar] = []
        published = kit.metrics.counter("bars_published_total", "Bars closed and published", ("interval",))
        self.published = {i: published.labels(i) for i in INTERVALS}

    async def on_tick(self, msg: Msg) -> None:
        tick = bus.decode(msg, contract.Tick)
        wall = now_ms()
        price = tick.last if tick.last is not None else (tick.bid + tick.ask) / 2
        closed = [bar for b in self.builders.values()
                  for bar in b.add(tick.symbol, tick.ts, price, tick.volume, wall)]
        self.ticks += 1
        await self.emit(closed)

    async def emit(self, bars: list[Bar]) -> None:
        """Store and publish closed bars; on failure keep them and retry with the next ones."""
        self.unsent.extend(bars)
        if not self.unsent:
            return
        try:
            ts = now_ms()
            events = [msgspec.structs.replace(bar, ts=ts) for bar in self.unsent]
            async with self.kit.valkey.pipeline(transaction=False) as pipe:
                for event in events:
                    key = bars_key(event.interval, event.symbol)
                    pipe.lpush(key, contract.encode(event))
                    pipe.ltrim(key, 0, self.settings.bars_kept - 1)
                await pipe.execute()
            self.unsent.clear()
            # Their acks awaited together (same id on a retry: JetStream drops the duplicate).
            acks = await asyncio.gather(*(bus.publish_event(self.kit.js, contract.bar_subject(
                e.interval, e.symbol), e) for e in events), return_exceptions=True)
            for event, ack in zip(events, acks, strict=True):
                if not isinstance(ack, BaseException):
                    self.published[event.interval].inc()
            failed = next((ack for ack in acks if isinstance(ack, BaseException)), None)
            if failed is not None:
                raise failed
        except Exception as exc:
            log.warning("normalizer: %d closed bars not emitted yet: %s", len(self.unsent), exc)

    async def close_due(self) -> None:
        """Close bars of quiet symbols once their clock passed the bar's end; retry unsent ones."""
        while True:
            await asyncio.sleep(0.5)
            await self.emit([bar for b in self.builders.values() for bar in b.due(now_ms())])

    async def check(self) -> Check:
        if self.unsent:
            return Check("bars", "unsent", "warn", "component", len(self.unsent), "bars",
                         output=f"{len(self.unsent)} closed bars not stored/published yet")
        return Check("ticks", "received", "pass", "component", self.ticks, "ticks")


router = APIRouter()


@router.get("/bars/{symbol}")
async def get_bars(request: Request, symbol: str, interval: Literal["1m", "5m"] = "1m",
                   limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    kit = get_kit(request)
    normalizer = service_state(request, Normalizer)
    symbol = symbol.upper()
    stored = await kit.valkey.lrange(bars_key(interval, symbol), 0, limit - 1)
    current = normalizer.builders[interval].open.get(symbol)
    if not stored and current is None:
        raise HTTPException(404, f"no {interval} bars for {symbol}: no tick seen for it")
    return {"symbol": symbol, "interval": interval,
            "current": msgspec.to_builtins(msgspec.structs.replace(current, ts=now_ms()))
            if current else None,
            "bars": [orjson.loads(b) for b in stored]}


settings = NormalizerSettings(service="normalizer")


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[Normalizer]:
    normalizer = Normalizer(kit, settings)
    kit.add_check("ticks", normalizer.check)
    kit.spawn(lambda: bus.durable_consumer(kit.js, contract.TOPOLOGY["normalizer"].durable("normalizer"),
                                   handle=normalizer.on_tick), "ticks-consumer")
    kit.spawn(lambda: normalizer.close_due(), "bar-closer")
    yield normalizer


app = create_app("normalizer", settings=settings, routers=[router],
                 lifespan=lifespan)
