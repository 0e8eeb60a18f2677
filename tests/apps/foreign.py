"""A foreign deployment in miniature: services trade-ops did not build, as their operators run them.

One ASGI app; FOREIGN_ROLE picks the service, FOREIGN_NATS the NATS server (core NATS,
connections never named), FOREIGN_VALKEY the host:port its cache is at. None serves
`/livez`, none says it is a trade-ops service. Each role carries one case doctor must
judge from the deployment's own evidence, never from trade-ops' model:

(The subjects are the original's bugs under names no trade-ops stream captures: a stack of
this machine that finds its NATS port taken by this fixture's server connects to it.)

    gateway       {"status": "ok"}; publishes feed.tick.BTCUSDT 10 times a second
    normalizer    {"status": "healthy"}; subscribes feed.tick.*.*: matches nothing published
    exeq          {"status": "healthy"}; publishes route.binance.order 4 times a second,
                  which nobody subscribes
    sink-ticks    {"status": "healthy", "nats_connected": false}: gave up reconnecting;
                  /stats nests its count ({"stats": {"ticks": {"rows_written": 561}}})
    pnl           uses no ptrc: 503 with redis-py's own error text naming FOREIGN_VALKEY
                  by IP and port when it refuses, healthy otherwise
    ptrc          healthy (the test kills it: trade-ops' graph would blame it for pnl)
    hot-cache     HTTP 200 {"status": "unhealthy", "checks": {"l2_cache": false}}
    risk          healthy; POST /check approves below a notional of 1e7; its OpenAPI lists
                  POST /risk/symbol/{symbol}/block, no security
    live-gateway  healthy; its OpenAPI lists POST /panic and PUT /mode with no security,
                  POST /flatten with a bearer requirement; made the TRADES stream
                  (trade.fill.>) and keeps there the one fill it made: order o-3's
    oms           healthy; GET /orders lists the orders it holds: o-0..o-2 SENT, o-3 and
                  o-4 FILLED (o-4's fill was never kept); publishes audit.order once a
                  second into the AUDIT stream (audit.>)
    own-openapi   not foreign at all: a trade-ops service whose /health is gone (404); its
                  OpenAPI still says so (services.contract.OWN_DESCRIPTION)
    event-writer  healthy; made the AUDIT stream and two pull consumers: `event-writer`
                  filtering audit.*.* (matches nothing that flows) and `audit-archive`
                  (audit.>, never fetched: its messages pile up pending)
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

from tests.apps.tiny import json_answer, json_body, lifespan

ROLE = os.environ.get("FOREIGN_ROLE", "gateway")
NATS_URL = os.environ.get("FOREIGN_NATS")
VALKEY = os.environ.get("FOREIGN_VALKEY", "127.0.0.1:1")
PUBLISHES = {"gateway": ("feed.tick.BTCUSDT", 0.1), "exeq": ("route.binance.order", 0.25),
             "oms": ("audit.order", 1.0)}
SUBSCRIBES = {"normalizer": "feed.tick.*.*"}
# The OMS's orders as its GET /orders lists them; the venue kept a fill for the first FILLED only.
ORDERS = {**{f"o-{i}": "SENT" for i in range(3)}, "o-3": "FILLED", "o-4": "FILLED"}
FILLS_KEPT = ("o-3",)
_state: dict[str, Any] = {"nc": None, "tasks": []}


def _openapi() -> dict[str, Any]:
    open_op = {"responses": {"200": {"description": "done"}}}
    paths: dict[str, Any] = {"/health": {"get": open_op}}
    if ROLE == "risk":
        paths["/check"] = {"post": open_op}
        paths["/risk/symbol/{symbol}/block"] = {"post": open_op}
    if ROLE == "live-gateway":
        paths["/panic"] = {"post": open_op}
        paths["/mode"] = {"put": open_op, "get": open_op}
        paths["/flatten"] = {"post": {**open_op, "security": [{"bearer": []}]}}
    return {"openapi": "3.0.2", "info": {"title": ROLE, "version": "2.1"}, "paths": paths,
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}}


def _valkey_refuses() -> str | None:
    """redis-py's words when the cache refuses: 'Error 111 connecting to HOST:PORT. ...'."""
    host, _, port = VALKEY.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return None
    except OSError as exc:
        return f"Error {exc.errno} connecting to {host}:{port}. Connection refused."


def _health() -> tuple[int, dict[str, Any]]:
    if ROLE == "pnl":
        error = _valkey_refuses()
        return (503, {"status": "unhealthy", "error": error}) if error else (200, {"status": "healthy"})
    if ROLE == "sink-ticks":
        return 200, {"status": "healthy", "nats_connected": False, "mode": "BATCH"}
    if ROLE == "hot-cache":
        return 200, {"status": "unhealthy", "checks": {"l2_cache": False}}
    return 200, {"status": "ok" if ROLE == "gateway" else "healthy"}


async def _publish(nc: Any, subject: str, every: float) -> None:
    n = 0
    while True:
        n += 1
        await nc.publish(subject, json.dumps({"n": n, "symbol": "BTCUSDT", "price": 50_000.0}).encode())
        await asyncio.sleep(every)


async def _nats() -> None:
    if not NATS_URL or (ROLE not in PUBLISHES and ROLE not in SUBSCRIBES
                        and ROLE not in ("event-writer", "live-gateway")):
        return
    import nats

    nc = await nats.connect(NATS_URL)  # unnamed, as the original's connections are
    _state["nc"] = nc
    if ROLE == "event-writer":
        from nats.js.api import ConsumerConfig

        js = nc.jetstream()
        await js.add_stream(name="AUDIT", subjects=["audit.>"])
        for durable, only in (("event-writer", "audit.*.*"), ("audit-archive", "audit.>")):
            await js.add_consumer("AUDIT", ConsumerConfig(durable_name=durable, filter_subject=only))
    if ROLE == "live-gateway":
        js = nc.jetstream()
        await js.add_stream(name="TRADES", subjects=["trade.fill.>"])
        fill = {"fill_id": "x-1", "order_id": FILLS_KEPT[0], "symbol": "BTCUSDT", "quantity": 0.001}
        await js.publish("trade.fill.BTCUSDT", json.dumps(fill).encode(), headers={"Nats-Msg-Id": "x-1"})
    if ROLE in SUBSCRIBES:
        async def ignore(msg: Any) -> None:
            return None

        await nc.subscribe(SUBSCRIBES[ROLE], cb=ignore)
    if ROLE in PUBLISHES:
        _state["tasks"].append(asyncio.create_task(_publish(nc, *PUBLISHES[ROLE])))
    await nc.flush()


async def _close() -> None:
    for task in _state["tasks"]:
        task.cancel()
    if _state["nc"] is not None:
        await _state["nc"].close()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send, _nats, _close)
    path, method = scope["path"], scope["method"]
    if ROLE == "own-openapi":
        from services.contract import OWN_DESCRIPTION

        if path == "/openapi.json":
            info = {"title": "gateway", "description": OWN_DESCRIPTION}
            return await json_answer(send, 200, {"openapi": "3.1.0", "paths": {}, "info": info})
        return await json_answer(send, 200 if path == "/livez" else 404, {"status": "pass"})
    if path == "/health":
        return await json_answer(send, *_health())
    if path == "/openapi.json" and ROLE in ("risk", "live-gateway"):
        return await json_answer(send, 200, _openapi())
    if ROLE == "sink-ticks" and path == "/stats":
        stats = {"ticks": {"rows_written": 561}}
        return await json_answer(send, 200, {"service": "sink-ticks", "stats": stats})
    if ROLE == "risk" and path == "/check" and method == "POST":
        body = await json_body(receive)
        body = body if isinstance(body, dict) else {}
        notional = float(body.get("quantity", 0)) * float(body.get("price") or 50_000.0)
        return await json_answer(send, 200, {"approved": notional < 1e7, "risk_level": "LOW",
                                         "reason": None if notional < 1e7 else "notional limit"})
    if ROLE == "oms" and path == "/orders" and method == "GET":
        return await json_answer(send, 200, [{"id": i, "status": s} for i, s in ORDERS.items()])
    return await json_answer(send, 404, {"detail": "Not Found"})
