"""Small services for the doctor tests, served by uvicorn under the real supervisor.

    kit_app        the real service kit: /health checks valkey and nats
    unhealthy_app  HTTP 200 with {"status": "unhealthy"} (the original backend's lie)
    hanging_app    healthy once (so `up` sees it ready), then /health never answers
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from tests.apps.tiny import answer as _answer
from tests.apps.tiny import lifespan as _lifespan

__all__ = ["hanging_app", "task_dead_app", "unhealthy_app"]  # and kit_app, built on first use


def __getattr__(name: str) -> Any:
    if name == "kit_app":  # built on first use: the other apps stay import-light
        from services.kit.app import create_app

        return create_app(os.environ.get("TRADE_OPS_SERVICE", "kit"))
    raise AttributeError(name)


async def unhealthy_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["path"] == "/livez":
        return await _answer(send, 200, b'{"status":"ok"}')
    if scope["path"] == "/health":
        return await _answer(send, 200, b'{"status":"unhealthy","error":"database connection lost"}')
    return await _answer(send, 404, b"{}")


_answered = {"health": 0}


async def hanging_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["path"] == "/health":
        _answered["health"] += 1
        if _answered["health"] > 1:
            await asyncio.sleep(3600)
        return await _answer(send, 200, b'{"status":"pass"}')
    if scope["path"] == "/livez":
        return await _answer(send, 200, b'{"status":"pass"}')
    return await _answer(send, 404, b"{}")


async def task_dead_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Healthy by /health, while its consumer died at start (as the kit logs it)."""
    if scope["type"] == "lifespan":
        print("2026-01-01 00:00:00 ERROR services.kit.app: background task fills-consumer died", flush=True)
        return await _lifespan(receive, send)
    if scope["path"] in ("/livez", "/health"):
        return await _answer(send, 200, b'{"status":"pass"}')
    return await _answer(send, 404, b"{}")
