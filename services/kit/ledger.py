"""Positions per account in Valkey, built from fills, each fill applied exactly once.

ptrc keeps the one ledger and publishes each position it changes (services.kit.
position_book has the followers). Fills are applied in batches,
in stream order, and each batch is one MULTI/EXEC that also moves the ledger's cursor
(the last stream sequence applied). The cursor is the truth: the reader starts again
from the message after it, so a crash anywhere never applies a fill twice nor skips
one, and needs no acks. A fill id seen before (the same fill published again under
another message id) is skipped too. WATCH on the cursor makes a second writer retry
rather than apply a batch twice.

    {prefix}:cursor:{stream}   last sequence applied of this EXEC stream ("EXEC@created",
                               to the microsecond: a stream created anew starts again at 1,
                               and so does this)
    {prefix}:pos:{account}     hash symbol -> Position JSON and `seq`, the stream sequence
                               of the last fill applied to it
    {prefix}:seenz:{account}   applied fill ids, scored by when (kept `seen_keep_s`: a fill
                               republished later than that is past every duplicate window)
    {prefix}:trades:{account}  list of Trade JSON, oldest first (the blotter; the last
                               `max_trades` of the account: the lake's `fills` keeps them all)
The seen ids and the blotter of an account idle for `seen_keep_s` expire; positions stay.
    {prefix}:accounts          set of accounts with at least one fill
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import orjson
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from redis.exceptions import WatchError

from services import contract
from services.kit import bus
from services.kit.positions import Position
from services.kit.text import raw as as_bytes
from services.kit.text import text

__all__ = ["DEFAULT_ACCOUNT", "BadFill", "Ledger", "Trade", "consume_fills", "parse_fill", "tidy"]

log = logging.getLogger(__name__)

# The account of an order that names none (the OMS's default): the ledgers default to it too.
DEFAULT_ACCOUNT = "default"


class Trade(msgspec.Struct, kw_only=True):
    """A fill as the ledger keeps it (an entry of the blotter), with the P&L it realized."""

    fill_id: str
    order_id: str
    client_order_id: str | None = None
    account: str
    symbol: str
    side: contract.Side
    quantity: float
    price: float
    ts: float = 0.0
    realized: float | None = None  # set when the trade is applied to its position


_trade = msgspec.json.Decoder(Trade)


class BadFill(ValueError):
    """A fill event that cannot be applied (missing or invalid fields)."""


def parse_fill(fill: contract.Fill) -> Trade:
    """The trade a fill describes, or BadFill with the reason (its types are the decoder's)."""
    fill_id = fill.fill_id or fill.id
    if not fill_id or not fill.account or not fill.symbol:
        raise BadFill(f"fill needs fill_id, account and symbol: {fill!r:.200}")
    if not fill.quantity > 0 or not fill.price > 0:
        raise BadFill(f"fill {fill_id}: quantity and price must be > 0")
    return Trade(fill_id=fill_id, order_id=fill.order_id, client_order_id=fill.client_order_id,
                 account=fill.account, symbol=fill.symbol, side=fill.side, quantity=fill.quantity,
                 price=fill.price, ts=fill.ts)


def tidy(value: float | None) -> float | None:
    """For answers: 64765.99999999999 (average-price arithmetic) shows as 64766.0."""
    return None if value is None else round(value, 10)


def _held(raw: bytes | None) -> tuple[Position, int]:
    """A stored position and the sequence of its last fill."""
    if not raw:
        return Position(), 0
    doc = orjson.loads(raw)
    return Position(doc["quantity"], doc["avg_price"], doc["realized"]), int(doc.get("seq", 0))


def _position(raw: bytes | None) -> Position:
    return _held(raw)[0]


def snapshot(account: str, symbol: str, position: Position, seq: int) -> contract.PositionSnapshot:
    return contract.PositionSnapshot(id=f"{account}:{symbol}:{seq}", ts=contract.now_ms(),
                                     account=account, symbol=symbol, quantity=position.quantity,
                                     avg_price=position.avg_price, realized=position.realized,
                                     seq=seq)


class Ledger:
    def __init__(self, valkey: aioredis.Redis, prefix: str, keep_trades: bool = True,
                 max_trades: int = 100_000, seen_keep_s: int = 7 * 24 * 3600) -> None:
        self.valkey = valkey
        self.prefix = prefix
        self.keep_trades = keep_trades
        self.max_trades = max_trades
        self.seen_keep_s = seen_keep_s
        self.stream = contract.EXEC  # the stream's identity, set by the reader before each start

    def _key(self, kind: str, account: str) -> str:
        return f"{self.prefix}:{kind}:{account}"

    @property
    def cursor_key(self) -> str:
        return f"{self.prefix}:cursor:{self.stream}"

    async def cursor(self) -> int:
        """The last sequence applied of this stream; an earlier version kept it under the
        stream's identity in whole seconds (bus.legacy_identity): read there until this
        version's first batch writes it under its own key."""
        value = await self.valkey.get(self.cursor_key)
        legacy = f"{self.prefix}:cursor:{bus.legacy_identity(self.stream)}"
        if value is None and legacy != self.cursor_key:
            value = await self.valkey.get(legacy)
        return int(value or 0)

    async def apply_batch(self, items: list[tuple[int, contract.Fill]]
                          ) -> list[contract.PositionSnapshot]:
        """Apply (stream sequence, fill) pairs, in order; the positions they changed.

        Pairs at or below the cursor were applied before; a bad fill is logged and skipped
        (retrying cannot fix it), and the cursor moves past it all the same.
        """
        if not items:
            return []
        trades: list[tuple[int, Trade]] = []
        for seq, event in items:
            try:
                trades.append((seq, parse_fill(event)))
            except BadFill as exc:
                log.warning("%s: dropped a fill: %s", self.prefix, exc)
        last = items[-1][0]
        while True:
            async with self.valkey.pipeline(transaction=True) as tx:
                try:
                    await tx.watch(self.cursor_key)
                    cursor, seen, held = await self._read(trades)
                    fresh = _fresh(trades, cursor, seen)
                    tx.multi()  # type: ignore[no-untyped-call]
                    moved = self._write(tx, fresh, held)
                    tx.set(self.cursor_key, max(cursor, last))
                    await tx.execute()
                    return moved
                except WatchError:  # another writer moved the cursor: read again
                    continue

    async def _read(self, trades: list[tuple[int, Trade]]
                    ) -> tuple[int, set[str], dict[tuple[str, str], tuple[Position, int]]]:
        """The cursor, the batch's fill ids already applied, and the positions it touches.

        Read on another connection in one round trip: only a writer that also moves the
        watched cursor changes these keys, so EXEC fails if they moved meanwhile.
        """
        by_account: dict[str, tuple[list[str], list[str]]] = {}
        for _, t in trades:
            ids, symbols = by_account.setdefault(t.account, ([], []))
            ids.append(t.fill_id)
            if t.symbol not in symbols:
                symbols.append(t.symbol)
        async with self.valkey.pipeline(transaction=False) as pipe:
            pipe.get(self.cursor_key)
            for account, (ids, symbols) in by_account.items():
                pipe.zmscore(self._key("seenz", account), ids)
                pipe.hmget(self._key("pos", account), symbols)
            replies = await pipe.execute()
        seen: set[str] = set()
        held: dict[tuple[str, str], tuple[Position, int]] = {}
        for i, (account, (ids, symbols)) in enumerate(by_account.items()):
            flags, raw = replies[1 + 2 * i], replies[2 + 2 * i]
            seen.update(f for f, hit in zip(ids, flags, strict=True) if hit is not None)
            held.update({(account, s): _held(r) for s, r in zip(symbols, raw, strict=True)})
        return int(replies[0] or 0), seen, held

    def _write(self, tx: Any, fresh: list[tuple[int, Trade]],
               held: dict[tuple[str, str], tuple[Position, int]]) -> list[contract.PositionSnapshot]:
        moved: dict[str, dict[str, int]] = {}  # account -> symbol -> seq of its last fill
        now = time.time()
        for seq, t in fresh:
            account, symbol = t.account, t.symbol
            t.realized = held[(account, symbol)][0].apply(t.side, t.quantity, t.price)
            moved.setdefault(account, {})[symbol] = seq
            tx.zadd(self._key("seenz", account), {t.fill_id: now})
            if self.keep_trades:
                tx.rpush(self._key("trades", account), contract.encode(t))
        for account in moved:  # the age and size limits, once per account and batch
            seen = self._key("seenz", account)
            tx.zremrangebyscore(seen, "-inf", now - self.seen_keep_s)
            tx.expire(seen, self.seen_keep_s)
            if self.keep_trades:
                tx.ltrim(self._key("trades", account), -self.max_trades, -1)
                tx.expire(self._key("trades", account), self.seen_keep_s)
        for account, symbols in moved.items():
            tx.hset(self._key("pos", account),
                    mapping={s: orjson.dumps({**held[(account, s)][0].to_json(), "seq": seq})
                             for s, seq in symbols.items()})
        if moved:
            tx.sadd(f"{self.prefix}:accounts", *moved)
        return [snapshot(a, s, held[(a, s)][0], seq) for a, symbols in moved.items()
                for s, seq in symbols.items()]

    async def snapshots(self) -> list[contract.PositionSnapshot]:
        """Every position held, as snapshots (published again at start: see ptrc)."""
        found = []
        for account in await self.accounts():
            raw = await self.valkey.hgetall(self._key("pos", account))
            for symbol, value in sorted(raw.items()):
                position, seq = _held(as_bytes(value))
                found.append(snapshot(account, text(symbol), position, seq))
        return found

    async def positions(self, account: str) -> dict[str, Position]:
        raw = await self.valkey.hgetall(self._key("pos", account))
        return {text(k): _position(as_bytes(v)) for k, v in sorted(raw.items())}

    async def trades(self, account: str, limit: int) -> tuple[int, list[Trade]]:
        """(total count, the last `limit` trades, oldest first)."""
        key = self._key("trades", account)
        async with self.valkey.pipeline(transaction=False) as pipe:
            pipe.llen(key)
            pipe.lrange(key, -limit, -1)
            count, raw = await pipe.execute()
        return count, [_trade.decode(r) for r in raw]

    async def accounts(self) -> list[str]:
        return sorted(text(a) for a in await self.valkey.smembers(f"{self.prefix}:accounts"))


def _fresh(trades: list[tuple[int, Trade]], cursor: int, seen: set[str]) -> list[tuple[int, Trade]]:
    """The trades to apply: past the cursor, and each fill id once."""
    fresh, ids = [], set(seen)
    for seq, t in trades:
        if seq > cursor and t.fill_id not in ids:
            ids.add(t.fill_id)
            fresh.append((seq, t))
    return fresh


Changed = Callable[[list[contract.PositionSnapshot]], Awaitable[None]]


async def consume_fills(js: JetStreamContext, ledger: Ledger, batch: int = 256,
                        changed: Changed | None = None, linger: float = bus.FOLLOW_LINGER_S) -> None:
    """Apply every fill on `exec.fill.>` to the ledger, in stream order, forever; `changed`
    gets the positions each batch moved, once that batch is committed."""

    async def handle(msgs: list[Msg]) -> None:
        items = [(msg.metadata.sequence.stream, fill) for msg, fill in bus.decode_each(msgs, contract.Fill)]
        moved = await ledger.apply_batch(items)
        if moved and changed is not None:
            await changed(moved)

    # (Earlier versions read through a durable named after the ledger: the cursor and the
    # seen fill ids replace it; the operator retires it, see contract.TOPOLOGY["ptrc"].)
    async def cursor() -> int:
        ledger.stream = await bus.stream_identity(js, contract.EXEC)
        return await ledger.cursor()

    await bus.cursor_consumer(js, stream=contract.EXEC, subject=contract.FILL_ALL, cursor=cursor,
                              handle=handle, name=ledger.prefix, batch=batch, linger=linger)
