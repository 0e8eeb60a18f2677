"""A tiny ASGI service for supervisor tests: `/livez` and `/health` answer 200.

Plain ASGI (no FastAPI) so it starts in a fraction of a second under uvicorn.
TINY_HEALTH=503 makes `/health` fail, for a service that runs but never gets ready.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Hook = Callable[[], Awaitable[None]]


async def lifespan(receive: Any, send: Any, startup: Hook | None = None,
                   shutdown: Hook | None = None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown is not None:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def json_answer(send: Any, status: int, doc: Any) -> None:
    await answer(send, status, json.dumps(doc).encode())


async def json_body(receive: Any) -> Any:
    """The request's JSON body, None when it is not JSON."""
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


async def answer(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    path = scope["path"]
    status = {"/livez": 200, "/health": int(os.environ.get("TINY_HEALTH", "200"))}.get(path, 404)
    await answer(send, status, b'{"status":"pass"}' if status == 200 else b'{"status":"fail"}')
