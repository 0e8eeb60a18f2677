"""Orders in Valkey, and the one place an order's fate is decided.

    oms:order:{order_id}            the order record (JSON), kept `order_ttl_s` after its last change
    oms:answer:{order_id}           the answer (status code + body), for idempotent replay
    oms:coid:{account}:{client_id}  "{digest}:{order_id}": a claim for `claim_ttl_s` while the
                                    first request is in flight, then the mapping for `idempotency_ttl_s`
    oms:idx:{account} / oms:idx:*   sorted sets of order ids by creation time (trimmed to `order_ttl_s`;
                                    the lake keeps the history)
    oms:pending:{order_id}          present while a PENDING order may still be confirmed: it
                                    expires `pending_expiry_s` after the order was written

One clock: an order's `created_ts` is Valkey's `TIME` when its record was written, and a
PENDING order's expiry is a key's TTL, so whether an order is too old to route is judged
by Valkey alone, never by the clock of whoever asks (a router whose clock ran 15 s ahead
expired orders its OMS was confirming: 11.6% of them were answered 503).
The record is services/oms/models.py's OrderRecord, encoded by msgspec (compact JSON, as
the scripts expect). The scripts never re-encode a record (cjson writes `[]` as `{}` and
keeps 14 digits): they set the few fields they change in the stored JSON text.

An accepted order is written PENDING before it is published, and becomes ACCEPTED by
`decide` only after JetStream acknowledged the publish. `decide` and `gate` (the
router's side) are compare-and-set scripts on the same record: PENDING moves once,
to ACCEPTED or to REJECTED, and whoever moves it first wins. So an order the router
routes is one the OMS answered 201 (or is about to), and an order the OMS answered
503 was moved to REJECTED, or never left PENDING and is expired by the router unrouted.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import redis.asyncio as aioredis

from services import contract
from services.kit.text import raw as as_bytes
from services.kit.text import text
from services.oms.models import OrderRecord, decode_record

__all__ = ["ALL", "PENDING_EXPIRY_S", "OrderStore", "coid_key", "expired_reason"]

log = logging.getLogger(__name__)

ALL = "*"
DAY = 24 * 3600
# A PENDING order this old was given up by its OMS: the router (or a GET) moves it to
# REJECTED. Longer than the OMS takes to confirm one (publish timeout 2 s, then up to
# entry.SETTLE_S of Valkey retries); the compare-and-set keeps it right if not.
PENDING_EXPIRY_S = 10.0


# The key a script is given when there is no client order id to claim (its token ARGV[5]
# is then ""): a name in the OMS's own keys, since its ACL user may name no other.
NO_CLAIM = "oms:coid:-"


def _order_key(order_id: str) -> str:
    return contract.ORDER_KEY.format(order_id=order_id)


def _answer_key(order_id: str) -> str:
    return f"oms:answer:{order_id}"


def _pending_key(order_id: str) -> str:
    return f"oms:pending:{order_id}"


def _index_key(account: str) -> str:
    return f"oms:idx:{account}"


def coid_key(account: str, client_order_id: str) -> str:
    return f"oms:coid:{account}:{client_order_id}"


# Lua helpers shared by the scripts: Valkey's clock in epoch ms, and one top-level field
# of a stored record set to a JSON value in its text, added when absent (a record is
# msgspec's compact JSON, where `"name":` cannot occur inside a string: quotes are escaped).
_LUA_LIB = """
local function now_ms()
  local t = redis.call('TIME')
  return string.format('%.3f', tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000)
end
local function put(raw, name, pattern, value)
  local out, n = string.gsub(raw, '"' .. name .. '":' .. pattern, '"' .. name .. '":' .. value, 1)
  if n == 1 then return out end
  return string.sub(raw, 1, -2) .. ',"' .. name .. '":' .. value .. '}'  -- absent: added
end
local NUMBER = '%-?[%d%.eE%+%-]+'
"""

# A new PENDING record and its indexes (index entries older than the record's age limit
# are trimmed here, amortised over the orders), after claiming the order's client order
# id (KEYS[4]) for ARGV[6] seconds: when another request holds the id, nothing is written
# and its token is returned. The record's created_ts and updated_ts are set to Valkey's
# clock, which is returned as {"", ms}; the pending marker (KEYS[5]) lives ARGV[7] ms.
_CREATE = _LUA_LIB + """
if ARGV[5] ~= '' then
  local holder = redis.call('GET', KEYS[4])
  if holder and holder ~= ARGV[5] then return {holder, ''} end
  redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
end
local now = now_ms()
local record = put(put(ARGV[1], 'created_ts', NUMBER, now), 'updated_ts', NUMBER, now)
redis.call('SET', KEYS[1], record, 'EX', ARGV[4])
redis.call('SET', KEYS[5], '1', 'PX', ARGV[7])
redis.call('ZADD', KEYS[2], now, ARGV[2])
redis.call('ZADD', KEYS[3], now, ARGV[2])
local floor = tonumber(now) - tonumber(ARGV[4]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', floor)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', floor)
return {'', now}
"""

# PENDING -> ARGV[2] (the new record ARGV[1]), once. Returns the status the order has after
# the call: ARGV[2] when this call (or an earlier try of it) moved it, else what it already
# was; "MISSING" when there is no record. With a client order id (KEYS[3]), the id must
# still be this order's (ARGV[5]) or free: a claim that expired and was taken by a retry
# means the retry owns the id, and this order is REJECTED instead.
_DECIDE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 'MISSING' end
local status = cjson.decode(raw)['status']
if status ~= 'PENDING' then return status end
local target, record = ARGV[2], ARGV[1]
if ARGV[5] ~= '' then
  local holder = redis.call('GET', KEYS[3])
  if holder and holder ~= ARGV[5] then
    target, record = 'REJECTED', ARGV[7]
  else
    redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[6])
  end
end
redis.call('SET', KEYS[1], record, 'EX', ARGV[4])
if target == ARGV[2] and ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[6]) end
return target
"""

# The router's question: may these orders go to the venue? KEYS are pairs (an order's
# record, its pending marker); returns each order's status, in order. A PENDING order whose
# pending marker expired is moved to REJECTED with the reason ARGV[1] here: its OMS never
# confirmed it. One script for the whole batch: each order is still its own compare-and-set.
_GATE = _LUA_LIB + """
local out = {}
for i = 1, #KEYS, 2 do
  local raw = redis.call('GET', KEYS[i])
  local status = 'MISSING'
  if raw then
    status = cjson.decode(raw)['status']
    if type(status) ~= 'string' then status = 'MISSING' end  -- a nil would shift every later answer
    if status == 'PENDING' and redis.call('EXISTS', KEYS[i + 1]) == 0 then
      raw = put(raw, 'status', '"PENDING"', '"REJECTED"')
      raw = put(raw, 'reason', 'null', cjson.encode(ARGV[1]))
      raw = put(raw, 'updated_ts', NUMBER, now_ms())
      redis.call('SET', KEYS[i], raw, 'KEEPTTL')
      status = 'REJECTED'
    end
  end
  out[#out + 1] = status
end
return out
"""

# Give a claim back, only if it is still ours (a retry may hold it by now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


def expired_reason(expiry_s: float = PENDING_EXPIRY_S) -> str:
    return f"not confirmed by the oms within {expiry_s:g}s: never routed"


def _answer_blob(status_code: int, answer: bytes | None) -> bytes:
    return b"%d|%s" % (status_code, answer) if answer is not None else b""


class OrderStore:
    def __init__(self, valkey: aioredis.Redis, *, idempotency_ttl_s: int = 7 * DAY,
                 claim_ttl_s: int = 10, order_ttl_s: int = 7 * DAY,
                 pending_expiry_s: float = PENDING_EXPIRY_S) -> None:
        self.valkey = valkey
        self.pending_expiry_s = pending_expiry_s
        self.ttl = idempotency_ttl_s
        self.claim_ttl = claim_ttl_s
        self.order_ttl = order_ttl_s
        self._create = valkey.register_script(_CREATE)
        self._decide = valkey.register_script(_DECIDE)
        self._gate = valkey.register_script(_GATE)
        self._release = valkey.register_script(_RELEASE)

    async def release(self, account: str, client_order_id: str, token: str) -> None:
        await self._release(keys=[coid_key(account, client_order_id)], args=[token])

    async def holder(self, account: str, client_order_id: str) -> str | None:
        return _text(await self.valkey.get(coid_key(account, client_order_id)))

    async def create(self, order: OrderRecord, token: str | None = None) -> str | None:
        """Write the order PENDING with its indexes, its `created_ts` and `updated_ts` set
        (in `order` too) to Valkey's clock. With a `token`, claim the order's client order
        id first, for `claim_ttl_s`: None when it was free (or is already ours: a retried
        call), else the holder's token, and nothing is written."""
        oid, coid = order.order_id, order.client_order_id
        key = coid_key(order.account, coid) if coid and token else NO_CLAIM
        held, now = await self._create(
            keys=[_order_key(oid), _index_key(order.account), _index_key(ALL), key, _pending_key(oid)],
            args=[contract.encode(order), oid, 0, self.order_ttl, token or "", self.claim_ttl,
                  int(self.pending_expiry_s * 1000)])
        if _text(held):
            return _text(held)
        order.created_ts = order.updated_ts = float(_text(now) or 0)
        return None

    async def decide(self, order: OrderRecord, status_code: int, answer: bytes | None,
                     token: str | None, taken: OrderRecord | None = None) -> str:
        """Move a PENDING order to `order.status` (see _DECIDE); the status it now has."""
        oid, coid = order.order_id, order.client_order_id
        key = coid_key(order.account, coid) if coid and token else NO_CLAIM
        record = contract.encode(order)
        result = await self._decide(
            keys=[_order_key(oid), _answer_key(oid), key],
            args=[record, order.status, _answer_blob(status_code, answer),
                  self.order_ttl, token or "", self.ttl, contract.encode(taken) if taken else record])
        return result.decode() if isinstance(result, bytes) else str(result)

    async def gate(self, order_id: str) -> str:
        return (await self.gate_many([order_id]))[0]

    async def gate_many(self, order_ids: list[str]) -> list[str]:
        """`gate` for each order, in one script call (each its own compare-and-set): its
        status, a PENDING one past its expiry moved to REJECTED first."""
        if not order_ids:
            return []
        keys = [key for order_id in order_ids for key in (_order_key(order_id), _pending_key(order_id))]
        statuses = await self._gate(keys=keys, args=[expired_reason(self.pending_expiry_s)])
        return [s.decode() if isinstance(s, bytes) else str(s) for s in statuses]

    async def answer(self, order_id: str) -> tuple[int, bytes] | None:
        raw = await self.valkey.get(_answer_key(order_id))
        if raw is None:
            return None
        code, _, body = as_bytes(raw).partition(b"|")
        return int(code), body

    async def get(self, order_id: str) -> OrderRecord | None:
        return (await self.get_many([order_id])).get(order_id)

    async def get_many(self, order_ids: list[str]) -> dict[str, OrderRecord]:
        """The stored ones of these orders, by id: one round trip. A record that does not
        decode (written by hand, or damaged) is logged and left out: it is not an order."""
        raws = await self.valkey.mget([_order_key(i) for i in order_ids]) if order_ids else []
        found = {}
        for order_id, raw in zip(order_ids, raws, strict=True):
            if raw is None:
                continue
            try:
                found[order_id] = decode_record(raw)
            except msgspec.ValidationError as exc:
                log.warning("oms:order:%s does not decode as an order record: %s", order_id, exc)
        return found

    async def put_many(self, orders: list[OrderRecord]) -> None:
        if not orders:
            return
        async with self.valkey.pipeline(transaction=False) as pipe:
            for order in orders:
                pipe.set(_order_key(order.order_id), contract.encode(order), ex=self.order_ttl)
            await pipe.execute()

    async def current(self, order_id: str) -> OrderRecord | None:
        """The order; a PENDING one past its expiry is settled (REJECTED) first, as the
        router would: a reader never sees a state the order can no longer leave."""
        return (await self.current_many([order_id])).get(order_id)

    async def current_many(self, order_ids: list[str]) -> dict[str, OrderRecord]:
        found = await self.get_many(order_ids)
        pending = [i for i, o in found.items() if o.status == "PENDING"]
        settled = [i for i, s in zip(pending, await self.gate_many(pending), strict=True) if s != "PENDING"]
        return {**found, **await self.get_many(settled)}

    async def list(self, account: str | None, status: str | None, limit: int) -> list[OrderRecord]:
        """Newest first (PENDING ones past their expiry settled); scans the index in pages
        until `limit` orders match."""
        key, start, page = _index_key(account or ALL), 0, max(limit, 200)
        out: list[OrderRecord] = []
        while len(out) < limit:
            ids = [text(i) for i in await self.valkey.zrevrange(key, start, start + page - 1)]
            if not ids:
                break
            orders = await self.current_many(ids)
            for order_id in ids:
                order = orders.get(order_id)
                if order is not None and (status is None or order.status == status):
                    out.append(order)
                    if len(out) == limit:
                        break
            start += page
        return out
