"""How every service is served: uvicorn (uvloop, httptools) with its resources bounded.

    - a request's headers must arrive within `header_timeout_s` of the connection opening
      (or of the previous answer on a kept-alive connection): a slow or silent client is
      cut off instead of holding a connection for ever;
    - an idle kept-alive connection is closed after `keep_alive_s`;
    - beyond `max_connections` connections (or requests in progress) a request gets 503;
    - on SIGTERM, idle connections are closed at once and requests in flight get
      `drain_s` to complete (uvicorn's graceful shutdown), so a client that stalls
      mid-request cannot hold the service past the kill that follows the SIGTERM;
    - bodies are bounded by `max_body_bytes` and must be JSON (services/kit/guard.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.kit.settings import KitSettings

__all__ = ["HeaderTimeoutProtocol", "serve"]


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools with a deadline on each request's headers (uvicorn has none)."""

    header_timeout_s = 5.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Armed for the next request's headers, unless a pipelined one (headers read) started.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def serve(app: str, settings: KitSettings, **extra: Any) -> None:
    protocol = type("BoundedHttp", (HeaderTimeoutProtocol,),
                    {"header_timeout_s": settings.header_timeout_s})
    uvicorn.run(app, host=settings.host, port=settings.port, loop="uvloop", http=protocol,
                timeout_keep_alive=int(max(1, settings.keep_alive_s)),
                limit_concurrency=settings.max_connections,
                # uvicorn hints an int; it is a timeout given to asyncio.wait_for, any number works
                timeout_graceful_shutdown=settings.drain_s,  # type: ignore[arg-type]
                **extra)
