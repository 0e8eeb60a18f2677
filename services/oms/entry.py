"""Order entry, the hot path: parse, claim the client id, check risk, persist, publish, decide.

The rule (what an answer means):
  * 201: the order is in Valkey as ACCEPTED and its `orders.new` event is in JetStream;
    it is routed to the venue exactly once.
  * 4xx or 503: the order never reaches a venue.
  * 504: the outcome could not be learnt (Valkey went away at the last step);
    `GET /orders?client_order_id=` or `GET /orders/{id}` tells the truth later.

How it holds, whatever fails when:
    1. parse and validate the raw body in one pydantic call (422 with reasons);
    2. at once: ask risk, and write the order PENDING (readable, never routable) after
       claiming `client_order_id` for `claim_ttl_s` seconds, in one Valkey script
       (store.create); a reused id writes nothing and replays the first answer (same
       body) or is a 409 (another body);
    3. a rejection moves PENDING -> REJECTED with its answer and is answered 422; risk
       unreachable moves it to REJECTED too and is a 503 (neither is ever published);
    4. an approval is published on `orders.new` (message id = order id, so JetStream
       drops a second publish of it), then moved PENDING -> ACCEPTED by a
       compare-and-set (store.decide) and answered 201;
    5. the router (exeq) routes an `orders.new` only when the record says ACCEPTED; a
       PENDING one waits, and one still PENDING after `pending_expiry_s` is moved to
       REJECTED by the same compare-and-set (its OMS died or gave up): never routed.
So an accepted order waits on two writes and a publish in series (risk runs beside the
first write): the PENDING write must come before the publish, or a router could meet an
order it cannot judge, and the ACCEPTED one after the publish's ack, or a 201 could
stand for an order JetStream never stored. A record that could not be moved to
REJECTED stays PENDING, unpublished, and expires: never routed either.
A failed publish moves the order to REJECTED (or leaves it PENDING, to expire) and is a
503, so a publish that JetStream stored late is never routed. The claim is given back
on a 503 only when the order is known not to trade; otherwise it expires in seconds.
With `risk_fail_open` an order risk could not check is accepted and flagged. Every
answer carries `result` (services.contract.OrderResult), so a client never reads the
outcome from prose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from nats.js import JetStreamContext
from pydantic import ValidationError

from services import contract
from services.contract import OrderResult
from services.kit import bus
from services.kit.invalid import reasons
from services.oms.models import OrderRecord, OrderRequest, Problem, new_order
from services.oms.riskclient import RiskClient, RiskUnavailable
from services.oms.store import OrderStore

__all__ = ["Answer", "OrderEntry", "cancel_event"]

log = logging.getLogger(__name__)

Answer = tuple[int, bytes]


def _problem(status: int, body: Problem) -> Answer:
    return status, contract.encode(body)


def _unavailable(what: str, exc: BaseException | str) -> Answer:
    text = exc if isinstance(exc, str) else f"{exc}" or type(exc).__name__
    return _problem(503, Problem(detail=f"dependency unavailable: {what}: {text}".rstrip(": "),
                              result=OrderResult.UNAVAILABLE))


def _replayed(answer: Answer) -> Answer:
    status, body = answer
    first = orjson.loads(body)
    if isinstance(first, dict):
        first["result"] = OrderResult.REPLAYED
    return status, orjson.dumps(first)


# After a Valkey error at the last step, how long to keep asking what became of the order.
SETTLE_S = 5.0  # covers a Valkey restart; well inside PENDING_EXPIRY_S


@dataclass
class OrderEntry:
    store: OrderStore
    risk: RiskClient
    js: JetStreamContext
    fail_open: bool
    counter: Any  # prometheus Counter with a `result` label

    async def place(self, body: bytes, account: str | None = None) -> Answer:
        """`account`: the only account the caller may trade for (its token's); None: any."""
        started = time.perf_counter()
        try:
            req = OrderRequest.model_validate_json(body)
        except ValidationError as exc:
            found = reasons(exc.errors(include_url=False))
            self.counter.labels("invalid").inc()
            return _problem(422, Problem(detail="; ".join(found), errors=found, result=OrderResult.INVALID))
        if account is not None and req.account != account:
            self.counter.labels("forbidden").inc()
            return _problem(403, Problem(detail=f"this token trades for account {account!r}, "
                                                f"not {req.account!r}"))

        order_id = uuid.uuid4().hex
        coid = req.client_order_id
        token = f"{req.digest()}:{order_id}" if coid else None
        now = contract.now_ms()
        order = new_order(req, order_id, now)
        # 1. PENDING (readable, not routable), with the client order id claimed, and risk: at once
        held, verdict = await asyncio.gather(self.store.create(order, token), self._risk(req, order_id),
                                             return_exceptions=True)
        if isinstance(held, BaseException):  # maybe written: then PENDING, never published, expires
            self.counter.labels("unavailable").inc()
            return _unavailable("valkey", held)
        if held is not None and token and coid:  # another request holds the id: nothing written
            return await self._replay(held, token, coid)
        if isinstance(verdict, BaseException):
            self.counter.labels("unavailable").inc()
            _move(order, "REJECTED", f"risk unavailable: {verdict or type(verdict).__name__}")
            await self._reject(req, order, 503, None, token)
            return _unavailable("risk", verdict)

        order.risk_level, order.warnings = verdict.risk_level, verdict.warnings
        order.arrival_mid = verdict.mid
        if not verdict.approved:
            _move(order, "REJECTED", verdict.reason or "rejected by risk")
            status, answer = _problem(422, Problem(detail=f"rejected by risk: {order.reason}",
                                                order=order.view(), result=OrderResult.REJECTED))
            if not await self._reject(req, order, status, answer, token):
                return _unavailable("valkey", f"order {order_id}: the rejection was not recorded")
            self.counter.labels("rejected").inc()
            return status, answer

        try:  # 2. in JetStream (a timeout may still be stored later: it stays unroutable)
            await bus.publish_event(self.js, contract.ORDERS_NEW, contract.OrderNew(
                id=order_id, ts=now, order=order.order()))
        except Exception as exc:
            return await self._not_published(req, order, token, exc)
        # 3. PENDING -> ACCEPTED, unless the router expired it first
        _move(order, "ACCEPTED")
        answer = contract.encode(order.view())
        # what the record becomes if a retry took the client order id (only one claimed it)
        taken = (msgspec.structs.replace(order, status="REJECTED", reason="client_order_id taken by a retry")
                 if token else None)
        outcome = await self._settle(order, answer, token, taken)
        if outcome == "ACCEPTED":
            self.counter.labels("accepted").inc()
            latency_ms = round((time.perf_counter() - started) * 1000, 3)
            return 201, contract.encode(order.accepted(latency_ms))
        self.counter.labels("unavailable").inc()
        if outcome is None:
            return _problem(504, Problem(detail=f"order {order_id}: outcome unknown (valkey unreachable "
                                             "after the publish); GET /orders/{id} tells it",
                                      order_id=order_id, result=OrderResult.UNKNOWN))
        await self._release(req, token)
        return _unavailable("oms", f"order {order_id} was not confirmed in time ({outcome})")

    async def _settle(self, order: OrderRecord, answer: bytes, token: str | None,
                      taken: OrderRecord | None) -> str | None:
        """decide(), tried again while Valkey fails, for up to SETTLE_S; None if never learnt."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            try:
                return await self.store.decide(order, 201, answer, token, taken)
            except Exception as exc:
                if time.monotonic() > deadline:
                    log.warning("order %s: outcome unknown: %s", order.order_id, exc)
                    return None
                await asyncio.sleep(0.1)

    async def _not_published(self, req: OrderRequest, order: OrderRecord, token: str | None,
                             exc: BaseException) -> Answer:
        self.counter.labels("unavailable").inc()
        _move(order, "REJECTED", f"not published: {exc or type(exc).__name__}")
        try:
            outcome = await self.store.decide(order, 503, None, None)
        except Exception:
            outcome = "PENDING"  # left for the router to expire: never routed
        if outcome == "REJECTED":
            await self._release(req, token)
        return _unavailable("nats", exc)

    async def _reject(self, req: OrderRequest, order: OrderRecord, status_code: int,
                      answer: bytes | None, token: str | None) -> bool:
        """PENDING -> REJECTED (never published, so never routed) with its answer; the claim
        is given back unless the answer is final. False when Valkey could not record it (the
        order stays PENDING and expires unrouted)."""
        try:
            outcome = await self.store.decide(order, status_code, answer, token if answer else None)
        except Exception as exc:
            log.warning("order %s: rejection not recorded: %s", order.order_id, exc)
            outcome = None
        if answer is None or outcome != "REJECTED":
            await self._release(req, token)
        return outcome == "REJECTED"

    async def _risk(self, req: OrderRequest, order_id: str) -> contract.RiskCheckReply:
        try:
            return await self.risk.check(req.risk_payload(order_id))
        except RiskUnavailable as exc:
            if not self.fail_open:
                raise
            log.warning("risk unavailable, accepting unchecked (fail-open): %s", exc)
            return contract.RiskCheckReply(approved=True, risk_level="UNCHECKED",
                                           warnings=[f"not risk-checked (fail-open): {exc}"])

    async def _replay(self, claimed: str, token: str, coid: str) -> Answer:
        held_digest, _, first_id = claimed.partition(":")
        if held_digest != token.partition(":")[0]:
            self.counter.labels("conflict").inc()
            return _problem(409, Problem(detail=f"client_order_id {coid!r} was already used with a "
                                             f"different order ({first_id})", order_id=first_id,
                                      result=OrderResult.CONFLICT))
        first = await self.store.answer(first_id)
        if first is None:
            self.counter.labels("conflict").inc()
            return _problem(409, Problem(detail=f"client_order_id {coid!r}: the first request "
                                             f"({first_id}) is still in flight; retry in a few seconds "
                                             "or GET /orders?client_order_id=", order_id=first_id,
                                      result=OrderResult.CONFLICT))
        self.counter.labels("replayed").inc()
        return _replayed(first)

    async def _release(self, req: OrderRequest, token: str | None) -> None:
        # The order was not taken: let the client retry with the same client_order_id.
        if req.client_order_id and token:
            with contextlib.suppress(Exception):
                await self.store.release(req.account, req.client_order_id, token)


def cancel_event(order: OrderRecord) -> contract.Cancel:
    return contract.Cancel(id=f"cancel-{order.order_id}", ts=contract.now_ms(),
                           order_id=order.order_id, account=order.account, symbol=order.symbol)


def _move(order: OrderRecord, status: contract.OrderStatus, reason: str | None = None) -> None:
    """The order's new status (and why), as of now."""
    order.status, order.updated_ts = status, contract.now_ms()
    if reason is not None:
        order.reason = reason
