"""A tiny ASGI service for supervisor tests: `/livez` and `/health` answer 200.

Plain ASGI (no FastAPI) so it starts in a fraction of a second under uvicorn.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    status = 200 if scope["path"] in ("/livez", "/health") else 404
    body = b'{"status":"pass"}' if status == 200 else b"{}"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
