"""A small real HTTP service for the A/A acceptance test: `POST /check` parses its JSON
body, waits DELAY_MS (a real, non-blocking delay, like a downstream call) and answers
JSON. Run twice with different DELAY_MS, it is the same service made slower for real.

With BUSY_MS set, each request also holds the process for that long (a blocking wait, as
CPU-bound work would): one request at a time, so the service has a capacity of 1000 / BUSY_MS
requests a second, and a load above it queues.

With TOKEN set, a request without `Authorization: Bearer TOKEN` is answered 401, as an
endpoint that wants a credential does.

Plain ASGI under uvicorn (no FastAPI) so it starts in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import orjson

from tests.apps.tiny import answer, lifespan

Scope = dict[str, Any]

DELAY_S = float(os.environ.get("DELAY_MS", "0")) / 1000.0
BUSY_S = float(os.environ.get("BUSY_MS", "0")) / 1000.0
TOKEN = os.environ.get("TOKEN")


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["path"] == "/livez":
        return await answer(send, 200, b'{"status":"pass"}')
    if TOKEN and (b"authorization", f"Bearer {TOKEN}".encode()) not in scope["headers"]:
        return await answer(send, 401, b'{"detail":"not authenticated"}')
    order = orjson.loads(await _body(receive) or b"{}")
    if DELAY_S:
        await asyncio.sleep(DELAY_S)
    if BUSY_S:
        time.sleep(BUSY_S)  # blocks the loop: the service's capacity
    await answer(send, 200, orjson.dumps({"approved": True, "symbol": order.get("symbol")}))
