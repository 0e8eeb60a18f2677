"""The venue's memory in Valkey: every order it acknowledged, and an outbox of events.

    venue:order:{id}   a Held order's JSON (matching.Working, or CancelFirst when its cancel
                       came first; kept 30 days: a redelivered order is recognised)
    venue:open         zset of resting order ids, scored by arrival (time priority)
    venue:outbox       hash event id -> {subject, event}: written with the order state in
                       one MULTI; once JetStream acked the publish, removed in the next
                       MULTI (or by the periodic flush)

A crash after the MULTI and before the publish leaves the events in the outbox; they
are published on start (and by a periodic flush), with their fixed ids, so JetStream
drops any that did get out before the crash.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec
import redis.asyncio as aioredis

from services import contract
from services.kit.text import text
from services.live_gateway.matching import CancelFirst, Event, Held, Working

__all__ = ["OrderState", "VenueStore"]

ORDER_TTL_S = 30 * 24 * 3600
OPEN = "venue:open"
OUTBOX = "venue:outbox"


def _key(order_id: str) -> str:
    return f"venue:order:{order_id}"


_working = msgspec.json.Decoder(Working)
_cancel_first = msgspec.json.Decoder(CancelFirst)


def _held(raw: bytes | str) -> Held:
    """A stored order: a Working one, or (its order is only a reference) a CancelFirst."""
    try:
        return _working.decode(raw)
    except msgspec.ValidationError:
        return _cancel_first.decode(raw)


def _held_many(order_ids: list[str], raws: list[bytes | str | None]) -> dict[str, Held | None]:
    return {i: _held(r) if r else None for i, r in zip(order_ids, raws, strict=True)}


class _Outboxed(msgspec.Struct):
    """An outbox entry: the event is decoded by its subject (a fill, else a cancel)."""

    subject: str
    event: msgspec.Raw


_outboxed = msgspec.json.Decoder(_Outboxed)


def _event(entry: _Outboxed) -> Event:
    if contract.is_fill(entry.subject):
        return entry.subject, contract.decode(entry.event, contract.Fill)
    return entry.subject, contract.decode(entry.event, contract.Cancelled)


class OrderState(msgspec.Struct, kw_only=True):
    """GET /orders/{id} and /book: the order as held, and what is left of it."""

    order: contract.Order | contract.OrderRef
    filled: float
    fills: int
    status: Literal["OPEN", "FILLED", "CANCELLED", "CANCEL_PENDING"]
    leaves: float | None  # None: only its reference is known (its cancel came first)


class VenueStore:
    def __init__(self, valkey: aioredis.Redis) -> None:
        self.valkey = valkey

    async def get(self, order_id: str) -> Held | None:
        raw = await self.valkey.get(_key(order_id))
        return _held(raw) if raw else None

    async def now_ms(self) -> float:
        """Valkey's clock, the one an order's created_ts is on."""
        seconds, micros = await self.valkey.time()
        return seconds * 1000 + micros / 1000

    async def get_many(self, order_ids: list[str]) -> dict[str, Held | None]:
        raws = await self.valkey.mget([_key(i) for i in order_ids]) if order_ids else []
        return _held_many(order_ids, raws)

    async def get_many_at(self, order_ids: list[str]) -> tuple[dict[str, Held | None], float]:
        """`get_many` and `now_ms` in one round trip (a pipeline): a batch of new orders needs
        both, and two round trips in series cost it one more (issue 29's Valkey lever)."""
        if not order_ids:
            return {}, await self.now_ms()
        async with self.valkey.pipeline(transaction=False) as pipe:
            pipe.mget([_key(i) for i in order_ids])
            pipe.time()
            raws, (seconds, micros) = await pipe.execute()
        return _held_many(order_ids, raws), seconds * 1000 + micros / 1000

    async def load_open(self) -> list[Working]:
        ids = [text(i) for i in await self.valkey.zrange(OPEN, 0, -1)]
        if not ids:
            return []
        raws = await self.valkey.mget([_key(i) for i in ids])
        return [w for w in (_held(r) for r in raws if r) if isinstance(w, Working) and w.is_open]

    async def save(self, changes: list[tuple[Held, list[Event]]], sent: list[str] | None = None) -> None:
        """The orders' states and the events they caused, in order, atomically; and the
        events `sent` earlier (ids) out of the outbox."""
        async with self.valkey.pipeline(transaction=True) as pipe:
            if sent:
                pipe.hdel(OUTBOX, *sent)
            for w, events in changes:
                pipe.set(_key(w.order_id), contract.encode(w), ex=ORDER_TTL_S)
                if w.is_open:
                    pipe.zadd(OPEN, {w.order_id: time.time()}, nx=True)
                else:
                    pipe.zrem(OPEN, w.order_id)
                for subject, event in events:
                    pipe.hset(OUTBOX, event.id, contract.encode({"subject": subject, "event": event}))
            await pipe.execute()

    async def sent(self, event_ids: list[str]) -> None:
        if event_ids:
            await self.valkey.hdel(OUTBOX, *event_ids)

    async def outbox(self) -> list[Event]:
        """Events saved but not yet known to be published, oldest first."""
        entries = [_event(_outboxed.decode(v)) for v in (await self.valkey.hgetall(OUTBOX)).values()]
        entries.sort(key=lambda e: e[1].ts)
        return entries

    async def outbox_size(self) -> int:
        return int(await self.valkey.hlen(OUTBOX))

    @staticmethod
    def describe(w: Held) -> OrderState:
        leaves = max(w.leaves, 0.0) if isinstance(w, Working) else None
        return OrderState(order=w.order, filled=w.filled, fills=w.fills, status=w.status, leaves=leaves)
