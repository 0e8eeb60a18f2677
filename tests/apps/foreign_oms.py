"""A foreign OMS as the original backend's behaved, for the order-verdict tests.

Its order reads `type`, upper-case sides, `account_id`, and requires `price` (anything else
is 400 "Order validation failed"); an accepted order answers HTTP 200 with status SENT and
stays SENT (nothing ever fills it) until `DELETE /orders/{id}` cancels it. FOREIGN_OMS
(comma-separated) changes it:

    reject        every order answered 200 {"status": "RISK_REJECTED", "reason": ...} (recorded)
    reject-half   every other order so
    untyped       its OpenAPI order body schema is an untyped object (FastAPI's `dict`)
    stop          the first POST /orders stops the whole process (SIGSTOP) before placing the
                  order: placed once something sends SIGCONT, as a suspended OMS did
    impostor      answers every POST /orders 200 {"ok": true}: no order id, no status
    flaky-cancel  the first DELETE answers 503 (the next ones work)
    strategy      its order also requires `strategy_id`, a field no other OMS has
    no-client-id  its order takes no client order id (the original's own schema): an order
                  whose answer was lost is found only in the account's listing

With FOREIGN_OMS_NATS set, each order it places is published on core NATS
`desk.order.accepted`, which nobody subscribes to (the original's `orders.accepted`).

`GET /_seen` counts what doctor and bench asked: posts, polls (GET /orders/{id}), lists,
cancels. `start_foreign_oms(workdir, *modes)` starts it as a real uvicorn process.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tests.apps import legacy
from tests.apps.tiny import json_answer as _answer
from tests.apps.tiny import json_body as _body
from tests.apps.tiny import lifespan

if TYPE_CHECKING:
    from tests.helpers import Proc

__all__ = ["OPEN", "app", "start_foreign_oms"]

MODES = set(filter(None, os.environ.get("FOREIGN_OMS", "").split(",")))
OPEN = "SENT"
STATUSES = ["NEW", "SENT", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "RISK_REJECTED", "REJECTED"]
# The original's order (tests/apps/legacy.py), with a client order id.
ORDER_SCHEMA: dict[str, Any] = {**legacy.ORDER_SCHEMA, "properties": {
    **legacy.ORDER_SCHEMA["properties"], "client_order_id": {"type": "string"}}}
if "no-client-id" in MODES:
    ORDER_SCHEMA = legacy.ORDER_SCHEMA
if "strategy" in MODES:
    ORDER_SCHEMA = {"required": [*ORDER_SCHEMA["required"], "strategy_id"],
                    "properties": {**ORDER_SCHEMA["properties"], "strategy_id": {"type": "string"}}}
NATS_URL = os.environ.get("FOREIGN_OMS_NATS")
ACCEPTED = "desk.order.accepted"
_nats: dict[str, Any] = {}
_orders: dict[str, dict[str, Any]] = {}
_seen = {"posts": 0, "polls": 0, "lists": 0, "cancels": 0}
_ids = itertools.count(1)


def _openapi() -> dict[str, Any]:
    body = {"type": "object"} if "untyped" in MODES else {"$ref": "#/components/schemas/OrderIn"}
    order_out = {"type": "object", "properties": {"id": {"type": "string"},
                                                  "status": {"type": "string", "enum": STATUSES}}}
    answer = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderOut"}}}}
    return {"openapi": "3.0.2", "info": {"title": "oms", "version": "0.9"},
            "paths": {"/orders": {"post": {"requestBody": {"content": {"application/json": {"schema": body}}},
                                           "responses": {"200": answer}},
                                  "get": {"responses": {"200": {"description": "the orders it holds"}}}},
                      "/orders/{order_id}": {"get": {"responses": {"200": answer}},
                                             "delete": {"responses": {"200": answer}}}},
            "components": {"schemas": {"OrderIn": ORDER_SCHEMA, "OrderOut": order_out}}}


def _errors(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    props = ORDER_SCHEMA["properties"]
    errors = [f"{name} is required" for name in ORDER_SCHEMA["required"] if name not in body]
    errors += [f"unknown field {k}" for k in body if k not in props]
    errors += [f"{k} must be one of {props[k]['enum']}" for k in ("side", "type")
               if k in body and body[k] not in props[k]["enum"]]
    return errors


def _place(body: dict[str, Any]) -> dict[str, Any]:
    n = next(_ids)
    rejected = "reject" in MODES or ("reject-half" in MODES and n % 2 == 0)
    order = {**body, "id": f"F-{n}", "status": "RISK_REJECTED" if rejected else OPEN}
    if rejected:
        order["reason"] = "RISK_REJECTED: no responders available for request"
    _orders[order["id"]] = order
    return order


async def _connect() -> None:
    if NATS_URL:
        import nats

        _nats["nc"] = await nats.connect(NATS_URL)  # unnamed, as the original's


async def _close() -> None:
    if "nc" in _nats:
        await _nats["nc"].close()


async def _orders_route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path, method = scope["path"], scope["method"]
    if path == "/orders" and method == "POST":
        _seen["posts"] += 1
        body = await _body(receive)
        if "impostor" in MODES:
            return await _answer(send, 200, {"ok": True})
        if "stop" in MODES and _seen["posts"] == 1:
            os.kill(os.getpid(), signal.SIGSTOP)  # the order is placed after SIGCONT
        errors = _errors(body)
        if errors:
            return await _answer(send, 400, {"error": "Order validation failed", "details": errors})
        placed = _place(body)
        if "nc" in _nats and placed["status"] == OPEN:
            await _nats["nc"].publish(ACCEPTED, json.dumps(placed).encode())
        return await _answer(send, 200, placed)
    if path == "/orders" and method == "GET":
        _seen["lists"] += 1
        query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        found = [o for o in _orders.values() if all(o.get(k) == v for k, v in query.items()
                                                    if k in ("account_id", "client_order_id", "status"))]
        return await _answer(send, 200, found)
    order = _orders.get(path.rsplit("/", 1)[1])
    if method == "GET":
        _seen["polls"] += 1
        return await _answer(send, 200 if order else 404, order or {"error": "order not found"})
    if method == "DELETE":
        _seen["cancels"] += 1
        if "flaky-cancel" in MODES and _seen["cancels"] == 1:
            return await _answer(send, 503, {"error": "try again"})
        if order is None or order["status"] != OPEN:
            return await _answer(send, 404 if order is None else 400, {"error": "cannot cancel"})
        order["status"] = "CANCELLED"
        return await _answer(send, 200, order)
    return await _answer(send, 405, {"error": "method not allowed"})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send, _connect, _close)
    path = scope["path"]
    if path == "/health":
        return await _answer(send, 200, {"status": "healthy", "service": "oms"})
    if path == "/openapi.json":
        return await _answer(send, 200, _openapi())
    if path == "/_seen":
        return await _answer(send, 200, {**_seen, "open": sorted(i for i, o in _orders.items()
                                                                  if o["status"] == OPEN)})
    if path == "/orders" or path.startswith("/orders/"):
        return await _orders_route(scope, receive, send)
    return await _answer(send, 404, {"detail": "Not Found"})


def start_foreign_oms(workdir: Path, *modes: str, nats_url: str | None = None) -> Proc:
    """The foreign OMS in `modes`, as a uvicorn process on a free port (publishing the orders it
    places on `nats_url`, when given)."""
    import sys
    import urllib.request

    from tests.apps.stacks import ROOT
    from tests.helpers import Proc, _on_a_free_port, _spawn, _started
    from trade_ops import infra

    def answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=0.5):
                return True
        except OSError:
            return False

    def once() -> Proc:
        port = infra.free_port()
        log = workdir / f"foreign-oms-{port}.log"
        cmd = [sys.executable, "-m", "uvicorn", "tests.apps.foreign_oms:app", "--app-dir", str(ROOT),
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        env = {"FOREIGN_OMS": ",".join(modes), **({"FOREIGN_OMS_NATS": nats_url} if nats_url else {})}
        proc = Proc(_spawn(cmd, log, env), port, log, f"http://127.0.0.1:{port}")
        return _started(proc, lambda: answers(proc.url + "/health"), "foreign oms")

    return _on_a_free_port(once)
