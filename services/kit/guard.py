"""Every service's request bodies: JSON only (415), and at most `max_body_bytes` (413).

A pure ASGI layer in front of the app: the body is read here, bounded, before any
handler sees it, so a 100 MB upload costs at most the limit in memory, never the whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyGuard", "is_json", "too_big_detail"]

_JSON_HEADERS = [(b"content-type", b"application/json")]


def is_json(content_type: bytes) -> bool:
    """application/json or a +json type (parameters like charset ignored)."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def too_big_detail(limit: int) -> str:
    return f"body larger than {limit} bytes"


def _header(scope: Mapping[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def problem(scope: Mapping[str, Any], limit: int) -> tuple[int, str] | None:
    """What is wrong with the request's head alone, or None (a body, if any, still to check)."""
    length = _header(scope, b"content-length")
    chunked = b"chunked" in (_header(scope, b"transfer-encoding") or b"").lower()
    try:
        declared = int(length) if length is not None else None
    except ValueError:
        return 400, "content-length is not a number"
    if declared is not None and declared > limit:
        return 413, too_big_detail(limit)
    if (declared or chunked) and not is_json(_header(scope, b"content-type") or b""):
        given = (_header(scope, b"content-type") or b"none").decode("latin-1")
        return 415, f"the body must be JSON (Content-Type: application/json), not {given}"
    return None


class BodyGuard:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = problem(scope, self.max_bytes)
        if found is not None:
            await _answer(send, *found)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, too_big_detail(self.max_bytes))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)
