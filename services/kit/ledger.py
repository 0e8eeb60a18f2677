"""Positions per account in Valkey, built from fills, each fill applied exactly once.

ptrc and pnl both keep one (under their own key prefix). A fill is applied and its id
marked seen in one MULTI/EXEC, under WATCH of both keys: a consumer that dies between
the two, or a fill delivered twice, never moves a position twice.

    {prefix}:pos:{account}     hash symbol -> Position JSON
    {prefix}:seen:{account}    set of applied fill ids
    {prefix}:trades:{account}  list of trade JSON, oldest first (the blotter)
    {prefix}:accounts          set of accounts with at least one fill
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
import redis.asyncio as aioredis
from fastapi import Query
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from redis.exceptions import WatchError

from services.kit import bus
from services.kit.positions import Position

__all__ = ["AccountQuery", "BadFill", "Ledger", "consume_fills", "parse_fill", "tidy"]

log = logging.getLogger(__name__)

# `?account=` on the ledger endpoints: required, not empty, no spaces (422 with the reason).
AccountQuery = Annotated[str, Query(min_length=1, max_length=128, pattern=r"^\S+$",
                                    description="the account")]

TRADE_FIELDS = ("fill_id", "order_id", "client_order_id", "account", "symbol", "side", "quantity",
                "price", "ts")


class BadFill(ValueError):
    """A fill event that cannot be applied (missing or invalid fields)."""


def parse_fill(event: dict[str, Any]) -> dict[str, Any]:
    """The trade a fill event describes, or BadFill with the reason."""
    fill_id = event.get("fill_id") or event.get("id")
    account, symbol, side = event.get("account"), event.get("symbol"), event.get("side")
    if not fill_id or not account or not symbol:
        raise BadFill(f"fill needs fill_id, account and symbol: {event!r:.200}")
    if side not in ("buy", "sell"):
        raise BadFill(f"fill {fill_id}: side must be buy or sell, not {side!r}")
    try:
        quantity, price = float(event["quantity"]), float(event["price"])
    except (KeyError, TypeError, ValueError):
        raise BadFill(f"fill {fill_id}: quantity and price must be numbers") from None
    if not quantity > 0 or not price > 0:
        raise BadFill(f"fill {fill_id}: quantity and price must be > 0")
    trade = {k: event.get(k) for k in TRADE_FIELDS}
    trade.update(fill_id=str(fill_id), account=str(account), symbol=str(symbol), quantity=quantity,
                 price=price)
    return trade


def tidy(value: float | None) -> float | None:
    """For answers: 64765.99999999999 (average-price arithmetic) shows as 64766.0."""
    return None if value is None else round(value, 10)


def _position(raw: bytes | None) -> Position:
    return Position(**orjson.loads(raw)) if raw else Position()


class Ledger:
    def __init__(self, valkey: aioredis.Redis, prefix: str, keep_trades: bool = True) -> None:
        self.valkey = valkey
        self.prefix = prefix
        self.keep_trades = keep_trades

    def _key(self, kind: str, account: str) -> str:
        return f"{self.prefix}:{kind}:{account}"

    async def apply(self, event: dict[str, Any]) -> bool:
        """Apply one fill event; False when its fill id was applied before."""
        trade = parse_fill(event)
        account, symbol = trade["account"], trade["symbol"]
        pos_key, seen_key = self._key("pos", account), self._key("seen", account)
        while True:
            async with self.valkey.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(pos_key, seen_key)
                    if await pipe.sismember(seen_key, trade["fill_id"]):
                        return False
                    position = _position(await pipe.hget(pos_key, symbol))
                    trade["realized"] = position.apply(trade["side"], trade["quantity"], trade["price"])
                    pipe.multi()
                    pipe.hset(pos_key, symbol, orjson.dumps(position.to_json()))
                    pipe.sadd(seen_key, trade["fill_id"])
                    pipe.sadd(f"{self.prefix}:accounts", account)
                    if self.keep_trades:
                        pipe.rpush(self._key("trades", account), orjson.dumps(trade))
                    await pipe.execute()
                    return True
                except WatchError:  # another writer moved this account: read again
                    continue

    async def positions(self, account: str) -> dict[str, Position]:
        raw = await self.valkey.hgetall(self._key("pos", account))
        return {k.decode(): _position(v) for k, v in sorted(raw.items())}

    async def trades(self, account: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """(total count, the last `limit` trades, oldest first)."""
        key = self._key("trades", account)
        async with self.valkey.pipeline(transaction=False) as pipe:
            pipe.llen(key)
            pipe.lrange(key, -limit, -1)
            count, raw = await pipe.execute()
        return count, [orjson.loads(r) for r in raw]

    async def accounts(self) -> list[str]:
        return sorted(a.decode() for a in await self.valkey.smembers(f"{self.prefix}:accounts"))


async def consume_fills(js: JetStreamContext, ledger: Ledger, durable: str, ack_wait: float) -> None:
    """Apply every fill on `exec.fill.>` to the ledger, from a durable consumer, forever.

    One at a time and in stream order, even across a crash: average cost and realized
    P&L depend on the order of the fills.
    """

    async def handle(msg: Msg) -> None:
        try:
            await ledger.apply(bus.decode(msg))
        except (BadFill, ValueError) as exc:  # retrying cannot fix it: log and move on
            log.warning("%s: dropped a fill: %s", durable, exc)

    await bus.durable_consumer(js, stream="EXEC", durable=durable, subject="exec.fill.>",
                               handle=handle, ack_wait=ack_wait, batch=1, max_ack_pending=1)
