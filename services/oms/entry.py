"""Order entry, the hot path: parse, claim the client id, check risk, persist + publish.

    1. parse and validate the raw body in one pydantic call (422 with reasons);
    2. claim `client_order_id` (one SET NX GET) and ask risk, both at once;
       a reused id replays the first answer (same body) or is a 409 (another body);
    3. a rejection is recorded and answered 422; an approval is written to Valkey and
       published on `orders.new` at once, and answered 201 only when both are done.
A dependency that fails answers 503 (fail closed), or with `risk_fail_open` an order
risk could not check is accepted and flagged. Every answer carries `result`
(services.contract.OrderResult), so a client never reads the outcome from prose.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from nats.js import JetStreamContext
from pydantic import ValidationError

from services import contract
from services.contract import OrderResult
from services.kit import bus
from services.kit.invalid import reasons
from services.oms.models import OrderRequest, new_order
from services.oms.riskclient import RiskClient, RiskUnavailable
from services.oms.store import OrderStore

__all__ = ["Answer", "OrderEntry", "cancel_event"]

log = logging.getLogger(__name__)

Answer = tuple[int, bytes]


def _json(status: int, body: dict[str, Any]) -> Answer:
    return status, orjson.dumps(body)


def _unavailable(what: str, exc: BaseException) -> Answer:
    return _json(503, {"detail": f"dependency unavailable: {what}: {exc}".rstrip(": "),
                       "result": OrderResult.UNAVAILABLE})


def _replayed(answer: Answer) -> Answer:
    status, body = answer
    first = orjson.loads(body)
    if isinstance(first, dict):
        first["result"] = OrderResult.REPLAYED
    return status, orjson.dumps(first)


@dataclass
class OrderEntry:
    store: OrderStore
    risk: RiskClient
    js: JetStreamContext
    fail_open: bool
    counter: Any  # prometheus Counter with a `result` label

    async def place(self, body: bytes) -> Answer:
        started = time.perf_counter()
        try:
            req = OrderRequest.model_validate_json(body)
        except ValidationError as exc:
            found = reasons(exc.errors(include_url=False))
            self.counter.labels("invalid").inc()
            return _json(422, {"detail": "; ".join(found), "errors": found,
                               "result": OrderResult.INVALID})

        order_id = uuid.uuid4().hex
        coid = req.client_order_id
        digest = req.digest() if coid else ""
        if coid:
            claimed, verdict = await asyncio.gather(
                self.store.claim(req.account, coid, f"{digest}:{order_id}"),
                self._risk(req), return_exceptions=True)
            if isinstance(claimed, BaseException):
                self.counter.labels("unavailable").inc()
                return _unavailable("valkey", claimed)
            if claimed is not None:
                return await self._replay(claimed, digest, coid)
        else:
            verdict = await self._risk(req)

        if isinstance(verdict, BaseException):
            self.counter.labels("unavailable").inc()
            await self._release(req)
            return _unavailable("risk", verdict)

        now = contract.now_ms()
        approved = bool(verdict.get("approved"))
        order = new_order(req, order_id, now, "ACCEPTED" if approved else "REJECTED",
                          verdict.get("risk_level", "UNKNOWN"), list(verdict.get("warnings", ())),
                          None if approved else verdict.get("reason") or "rejected by risk")
        if not approved:
            status, answer = 422, orjson.dumps({"detail": f"rejected by risk: {order['reason']}",
                                                "order": order, "result": OrderResult.REJECTED})
            try:
                await self.store.create(order, status, answer if coid else None)
            except Exception as exc:
                await self._release(req)
                return _unavailable("valkey", exc)
            self.counter.labels("rejected").inc()
            return status, answer

        answer = orjson.dumps(order) if coid else None
        event = {"id": order_id, "ts": now, "order": order}
        saved, published = await asyncio.gather(
            self.store.create(order, 201, answer),
            bus.publish_event(self.js, contract.ORDERS_NEW, event), return_exceptions=True)
        if isinstance(saved, BaseException) or isinstance(published, BaseException):
            return await self._undo(req, order, saved, published)
        self.counter.labels("accepted").inc()
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return 201, orjson.dumps({**order, "latency_ms": latency_ms, "result": OrderResult.ACCEPTED})

    async def _risk(self, req: OrderRequest) -> dict[str, Any]:
        try:
            return await self.risk.check(req.risk_payload())
        except RiskUnavailable as exc:
            if not self.fail_open:
                raise
            log.warning("risk unavailable, accepting unchecked (fail-open): %s", exc)
            return {"approved": True, "risk_level": "UNCHECKED",
                    "warnings": [f"not risk-checked (fail-open): {exc}"]}

    async def _replay(self, claimed: str, digest: str, coid: str) -> Answer:
        held_digest, _, first_id = claimed.partition(":")
        if held_digest != digest:
            self.counter.labels("conflict").inc()
            return _json(409, {"detail": f"client_order_id {coid!r} was already used with a "
                                         f"different order ({first_id})", "order_id": first_id,
                               "result": OrderResult.CONFLICT})
        first = await self.store.answer(first_id)
        if first is None:
            self.counter.labels("conflict").inc()
            return _json(409, {"detail": f"client_order_id {coid!r}: the first request "
                                         f"({first_id}) is still in flight", "order_id": first_id,
                               "result": OrderResult.CONFLICT})
        self.counter.labels("replayed").inc()
        return _replayed(first)

    async def _release(self, req: OrderRequest) -> None:
        # The order was not taken: let the client retry with the same client_order_id.
        if req.client_order_id:
            with contextlib.suppress(Exception):
                await self.store.release(req.account, req.client_order_id)

    async def _undo(self, req: OrderRequest, order: dict[str, Any],
                    saved: Any, published: Any) -> Answer:
        self.counter.labels("unavailable").inc()
        if not isinstance(published, BaseException):
            # On the bus but not in Valkey: ask for it to be cancelled before it trades.
            with contextlib.suppress(Exception):
                await bus.publish_event(self.js, contract.ORDERS_CANCEL, cancel_event(order))
        elif not isinstance(saved, BaseException):
            with contextlib.suppress(Exception):
                order.update(status="REJECTED", reason=f"not published: {published}")
                await self.store.put(order)
        await self._release(req)
        if isinstance(saved, BaseException):
            return _unavailable("valkey", saved)
        return _unavailable("nats", published)


def cancel_event(order: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"cancel-{order['order_id']}", "ts": contract.now_ms(),
            "order_id": order["order_id"], "account": order["account"], "symbol": order["symbol"]}
