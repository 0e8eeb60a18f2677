"""The original backend in miniature: tiny services that behave as its operators saw them.

One ASGI app; LEGACY_ROLE picks the service. None serves `/livez`; their health bodies
are the legacy shapes; with LEGACY_NATS set, the order path runs over core NATS:

    gateway        {"status": "ok"}; /ticker/{symbol}, but no /tickers (404)
    risk           {"status": "healthy"}; POST /check answers 500 when `price` is missing
    oms            {"status": "healthy"}; its OpenAPI order schema reads `type` (not
                   `order_type`), upper-case sides, and requires `price`; anything else
                   is 400 "Order validation failed". An accepted order goes out on core
                   `orders.new`; a fill on `exec.fill.>` would fill it, but none ever comes
    exeq           {"status": "healthy"}; takes `orders.new`, publishes `venue.mock.order`
                   on core NATS, where nobody subscribes
    live-gateway   {"status": "ok"} while its subscription failed: it subscribes to nothing
    event-writer   HTTP 503 {"status": "unhealthy", "error": ... questdb:9000 ...}
    ptrc, hot-cache  HTTP 200 {"status": "unhealthy", "checks": {"redis": false, ...}}
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from typing import Any

from tests.apps.tiny import json_body as _body

ROLE = os.environ.get("LEGACY_ROLE", "gateway")
NATS_URL = os.environ.get("LEGACY_NATS")
PRICE = 50_000.0
_state: dict[str, Any] = {"orders": {}, "nc": None}
_ids = itertools.count(1)

HEALTH: dict[str, tuple[int, dict[str, Any]]] = {
    "gateway": (200, {"status": "ok"}),
    "risk": (200, {"status": "healthy"}),
    "oms": (200, {"status": "healthy", "service": "oms"}),
    "exeq": (200, {"status": "healthy"}),
    "live-gateway": (200, {"status": "ok"}),
    "event-writer": (503, {"status": "unhealthy", "error": "QuestDB connection failed: [Errno -2] Name or "
                                                           "service not known (questdb:9000)"}),
    "ptrc": (200, {"status": "unhealthy", "checks": {"redis": False, "nats": True}}),
    "hot-cache": (200, {"status": "unhealthy", "checks": {"redis": False}}),
}

# A JSON schema document (walked by key in the handlers below).
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["symbol", "side", "quantity", "type", "price"],
    "properties": {
        "symbol": {"type": "string"},
        "side": {"type": "string", "enum": ["BUY", "SELL"]},
        "quantity": {"type": "number"},
        "type": {"type": "string", "enum": ["LIMIT", "MARKET"]},
        "price": {"type": "number"},
        "account_id": {"type": "string"},
    },
}
CHECK_SCHEMA = {"type": "object", "required": ["symbol", "side", "quantity", "price"],
                "properties": {"symbol": {"type": "string"}, "side": {"type": "string"},
                               "quantity": {"type": "number"}, "price": {"type": "number"}}}


def _openapi() -> dict[str, Any]:
    def body(ref: str) -> dict[str, Any]:
        return {"requestBody": {"content": {"application/json": {"schema": {"$ref": ref}}}}}

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    if ROLE == "oms":
        paths["/orders"] = {"post": body("#/components/schemas/OrderCreate")}
        schemas["OrderCreate"] = ORDER_SCHEMA
    if ROLE == "risk":
        paths["/check"] = {"post": body("#/components/schemas/RiskCheck")}
        schemas["RiskCheck"] = CHECK_SCHEMA
    return {"openapi": "3.0.2", "info": {"title": ROLE, "version": "0.9"}, "paths": paths,
            "components": {"schemas": schemas}}


async def _nats() -> None:
    if not NATS_URL or ROLE not in ("oms", "exeq", "live-gateway"):
        return
    import nats

    nc = await nats.connect(NATS_URL, name=ROLE)
    _state["nc"] = nc
    if ROLE == "oms":
        async def apply(msg: Any) -> None:
            fill = json.loads(msg.data)
            if fill.get("order_id") in _state["orders"]:
                _state["orders"][fill["order_id"]]["status"] = "FILLED"

        await nc.subscribe("exec.fill.>", cb=apply)
    if ROLE == "exeq":
        async def route(msg: Any) -> None:
            await nc.publish("venue.mock.order", msg.data)  # core NATS: nobody hears it

        await nc.subscribe("orders.new", cb=route)
    if ROLE == "live-gateway":
        # The original venue's JetStream subscribe failed; it logged and carried on saying "ok".
        print("ERROR subscribe to venue.mock.order failed: no stream matches subject", file=sys.stderr,
              flush=True)
    await nc.flush()


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await _nats()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _state["nc"] is not None:
                await _state["nc"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _answer(send: Any, status: int, doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _order_errors(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["body must be an object"]
    errors = [f"{field} is required" for field in ORDER_SCHEMA["required"] if field not in body]
    errors += [f"unknown field {k}" for k in body if k not in ORDER_SCHEMA["properties"]]
    for field in ("side", "type"):
        if field in body and body[field] not in ORDER_SCHEMA["properties"][field]["enum"]:
            errors.append(f"{field} must be one of {ORDER_SCHEMA['properties'][field]['enum']}")
    return errors


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path, method = scope["path"], scope["method"]
    if path == "/health":
        code, doc = HEALTH[ROLE]
        return await _answer(send, code, doc)
    if path == "/openapi.json" and ROLE in ("oms", "risk"):
        return await _answer(send, 200, _openapi())
    if ROLE == "gateway" and path.startswith("/ticker/"):
        symbol = path.rsplit("/", 1)[1]
        if symbol != "BTCUSDT":
            return await _answer(send, 404, {"detail": "unknown symbol"})
        return await _answer(send, 200, {"symbol": symbol, "last_price": PRICE, "bid": PRICE - 1,
                                         "ask": PRICE + 1})
    if ROLE == "risk" and path == "/check" and method == "POST":
        body = await _body(receive)
        if not isinstance(body, dict) or "price" not in body:
            return await _answer(send, 500, b"Internal Server Error")
        approved = float(body.get("quantity", 0)) * float(body["price"]) < 1e7
        return await _answer(send, 200, {"approved": approved, "risk_level": "LOW" if approved else "HIGH",
                                         "reason": None if approved else "notional limit", "warnings": []})
    if ROLE == "oms" and path == "/orders" and method == "POST":
        body = await _body(receive)
        errors = _order_errors(body)
        if errors:
            return await _answer(send, 400, {"error": "Order validation failed", "details": errors})
        order = {**body, "id": f"ord-{next(_ids)}", "status": "ACCEPTED"}
        _state["orders"][order["id"]] = order
        if _state["nc"] is not None:
            await _state["nc"].publish("orders.new", json.dumps(order).encode())
        return await _answer(send, 201, order)
    if ROLE == "oms" and path.startswith("/orders/") and method == "GET":
        order = _state["orders"].get(path.rsplit("/", 1)[1])
        return await _answer(send, 200 if order else 404, order or {"error": "not found"})
    return await _answer(send, 404, {"detail": "Not Found"})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    return await _http(scope, receive, send)
