"""POST /orders as raw ASGI, ahead of the FastAPI/Starlette middleware stack.

The hot route needs none of that stack: OrderEntry parses the body itself and maps every
dependency failure to an answer. A py-spy profile of oms taking orders showed ~8 nested
ASGI layers (ServerError, ExceptionTelemetry, BodyLimit, Metrics, Exception,
AsyncExitStack, router, route) costing ~70 us a request. This wrapper answers the one
route directly and keeps what those layers gave it: the request metrics
(http_requests_total / http_request_duration_seconds, route "/orders"), a body size
limit and JSON only (services/kit/guard.py), 503 for a dependency error and 500
(logged) for a bug. Every other request goes to the FastAPI app unchanged.
It uses ASGI's public interface only; the layers it skips are FastAPI's and Starlette's as
measured with fastapi 0.165 / starlette 1.10, and fastapi is pinned there (pyproject.toml:
fastapi<0.166) so a new stack is measured again before it is taken.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from services.kit import Kit
from services.kit.app import dependency_down_detail, dependency_errors
from services.kit.guard import problem
from services.oms.handlers import place_for
from services.oms.state import OmsState

__all__ = ["MAX_BODY", "OrdersFastPath"]

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # an order is a few hundred bytes
_JSON = [(b"content-type", b"application/json")]


class OrdersFastPath:
    """`OrdersFastPath(api, kit)`: an ASGI app that answers POST /orders itself and passes
    everything else (other routes, the lifespan) to `api`."""

    def __init__(self, app: ASGIApp, kit: Kit) -> None:
        self.app = app
        self.kit = kit
        # Label children resolved once per status, not on every request.
        self.latency = kit.metrics.latency.labels("POST", "/orders")
        self.requests: dict[int, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/orders" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        found = problem(scope, MAX_BODY)  # oversized or not JSON: answered before reading
        if found is not None:
            status, body = found[0], orjson.dumps({"detail": found[1]})
        else:
            status, body = await self._answer(scope, receive)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_JSON, (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
        counter = self.requests.get(status)
        if counter is None:
            counter = self.requests[status] = self.kit.metrics.requests.labels("POST", "/orders",
                                                                               str(status))
        counter.inc()
        self.latency.observe(time.perf_counter() - started)

    @staticmethod
    def _authorization(scope: Scope) -> bytes | None:
        return next((v for k, v in scope["headers"] if k == b"authorization"), None)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 499, b""  # the client left; nothing is sent to it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return 413, orjson.dumps({"detail": f"body larger than {MAX_BODY} bytes"})
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            state = self.kit.held_as(OmsState)
            return await place_for(state.scope, state.entry, self._authorization(scope),
                                   b"".join(chunks))
        except dependency_errors as exc:
            return 503, orjson.dumps({"detail": dependency_down_detail(exc)})
        except Exception:
            log.exception("POST /orders failed")
            return 500, orjson.dumps({"detail": "internal error"})
