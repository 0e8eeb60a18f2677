"""How every service is served: uvicorn (uvloop, httptools) with its resources bounded.

    - a whole request, headers and body, must arrive within `request_timeout_s` of the
      connection opening (or of the previous answer on a kept-alive connection): a slow
      or silent client is cut off instead of holding a connection (999 connections that
      sent headers and never finished their bodies made every real order 503);
    - the request line and headers are at most `max_header_bytes` and `max_headers`
      (431 beyond: 75 MB of headers were taken in 5 s, and 8 such clients took the OMS
      from 64 to 407 MB);
    - a request reaches the app only once it has arrived whole (its body too, up to
      `max_body_bytes`; past that the app is given it and answers 413): a client still
      sending costs a few bytes appended per packet, no task woken, and nothing at all
      when the deadline cuts it (a profile of the OMS beside 1,000 slow-body clients: their
      app tasks woken for each byte, each cut one answered, and the garbage collector);
    - only requests that have arrived whole count against `max_requests`: beyond it a
      request gets 503; an idle connection, or one still sending, never does;
    - at most `max_connections_per_client` connections per client address (more are
      closed at once) and `max_connections` in all (a new one past that closes the oldest
      connection that has no request in progress, so a real client always gets in);
    - an idle kept-alive connection is closed after `keep_alive_s`;
    - on SIGTERM, idle connections and ones still sending are closed at once and requests
      in flight get `drain_s` to complete (uvicorn's graceful shutdown), so a client that
      stalls mid-request cannot hold the service past the kill that follows the SIGTERM;
    - bodies are bounded by `max_body_bytes` and must be JSON (services/kit/guard.py).

uvicorn offers none of the first five (its `limit_concurrency` counts idle connections),
so BoundedHttp adds them to its httptools protocol: the one bypass of uvicorn's
internals, pinned to the versions it was written against (UVICORN_TESTED and the bounds
in pyproject.toml; the canary test in tests/test_http_limits.py fails when they change).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import time
from collections import Counter
from typing import Any, ClassVar

import orjson
import uvicorn
from uvicorn._types import ASGI3Application
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from services.kit.guard import problem
from services.kit.settings import KitSettings

__all__ = ["UVICORN_TESTED", "BoundedHttp", "StartupFrozen", "bounded", "serve"]

UVICORN_TESTED = ("0.55.", "0.9.")  # uvicorn, httptools: the versions BoundedHttp was written against


class _HeadTooLarge(Exception):
    """Raised in a parser callback: the head is over a bound (answered 431)."""


class BoundedHttp(HttpToolsProtocol):
    """httptools with a deadline on each whole request, bounded heads, and connection
    limits per client and in all (see the module docstring). Configure a subclass with
    `bounded(settings)`: its counters are shared by one server's connections."""

    request_timeout_s = 5.0
    max_header_bytes = 32 * 1024
    max_headers = 100
    max_body_bytes = 1 << 20
    max_requests = 1000
    max_connections = 4096
    max_connections_per_client = 1024
    # Shared by every connection of one server (fresh ones in each `bounded` subclass).
    per_client: ClassVar[Counter[str]] = Counter()
    opened_at: ClassVar[dict[BoundedHttp, float]] = {}

    _timer: asyncio.TimerHandle | None = None
    # A request whose head has arrived and its body not yet: the app is given it when it has.
    _waiting: tuple[RequestResponseCycle, ASGI3Application] | None = None
    _head_bytes = 0
    _head_count = 0
    _head_done = False
    _head_problem: str | None = None
    _peer = ""

    # -- the whole-request deadline -------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self.request_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- connections ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else ""
        if self.per_client[self._peer] >= self.max_connections_per_client:
            transport.close()  # connection_lost follows: counted here, uncounted there
        elif len(self.opened_at) >= self.max_connections:
            self._make_room(transport)
        self.per_client[self._peer] += 1
        self.opened_at[self] = time.monotonic()
        self._arm()

    def _make_room(self, transport: asyncio.Transport) -> None:
        """Close the oldest connection with no request in progress, else this new one."""
        idle = (c for c in self.opened_at
                if not c.transport.is_closing() and (c.cycle is None or c.cycle.response_complete
                                                     or c._waiting is not None))
        oldest = min(idle, key=self.opened_at.__getitem__, default=None)
        (oldest.transport if oldest is not None else transport).close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.opened_at.pop(self, None) is not None:
            self.per_client[self._peer] -= 1
            if self.per_client[self._peer] <= 0:
                del self.per_client[self._peer]
        no_task = self.cycle is None or self.cycle.response_complete or self._waiting is not None
        self._waiting = None
        super().connection_lost(exc)
        self._unset_keepalive_if_required()  # uvicorn leaves it armed when the client reset
        if no_task:
            # The protocol and its request cycle refer to each other; uvicorn breaks that at
            # the end of the app's task, which a request cut before it arrived whole never
            # had: each would be ~16 objects of cyclic garbage for a full collection to walk
            # (1,000 slow clients cut every 5 s). Nothing calls this protocol again and no app
            # task holds it: dropping its references frees it at once.
            self.transport = self.flow = self.cycle = None  # type: ignore[assignment]

    def shutdown(self) -> None:
        if self._waiting is not None:  # nothing to drain: the app has not been given it
            self.transport.close()
            return
        super().shutdown()

    # -- the head ---------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self._head_done:
            self._head_bytes += len(data)
        super().data_received(data)
        # httptools buffers a header until it ends: bound what arrives before the head is done.
        over = not self._head_done and self._head_bytes > self.max_header_bytes
        if over and not self.transport.is_closing():
            self._head_problem = f"request head larger than {self.max_header_bytes} bytes"
            self.send_400_response(self._head_problem)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done, self._head_count, self._head_problem = False, 0, None

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > self.max_headers:
            self._head_problem = f"more than {self.max_headers} headers"
            raise _HeadTooLarge(self._head_problem)  # httptools stops; uvicorn answers 400: 431 below
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if self._head_problem is None:
            super().send_400_response(msg)
            return
        body = orjson.dumps({"detail": self._head_problem})
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                             b"content-type: application/json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (len(body), body))
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._head_done, self._head_bytes = True, 0
        super().on_headers_complete()

    # -- the app is given whole requests ----------------------------------------------------
    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        """uvicorn starts the app when a head has arrived (or a pipelined one's turn comes):
        here it waits for the body, unless the head alone is answered (413, 415, 400)."""
        if not cycle.more_body or problem(cycle.scope, self.max_body_bytes) is not None:
            self._dispatch(cycle, app)
            return
        if cycle.waiting_for_100_continue:  # the client waits for this before its body
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        self._waiting = (cycle, app)

    def _dispatch(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._waiting = None
        # Only requests that arrived whole are running: one still sending is not "in progress".
        busy = len(self.tasks) >= self.max_requests
        super()._start_asgi_task(cycle, service_unavailable if busy else app)

    def on_body(self, body: bytes) -> None:
        if self._waiting is None:
            super().on_body(body)
            return
        cycle = self._waiting[0]
        cycle.body += body  # uvicorn's flow control would pause reading for a reader not started
        if len(cycle.body) > self.max_body_bytes:
            self._dispatch(*self._waiting)  # the app reads past its bound and answers 413

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        if self._waiting is not None and self._waiting[0] is self.cycle:
            self._dispatch(*self._waiting)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Armed for the next request, unless a pipelined one (its head read) started.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self._arm()


def bounded(settings: KitSettings) -> type[BoundedHttp]:
    """A BoundedHttp with `settings`' limits and counters of its own (one per server)."""
    return type("BoundedHttpServer", (BoundedHttp,), {
        "request_timeout_s": settings.request_timeout_s, "max_header_bytes": settings.max_header_bytes,
        "max_headers": settings.max_headers, "max_body_bytes": settings.max_body_bytes,
        "max_requests": settings.max_requests, "max_connections": settings.max_connections,
        "max_connections_per_client": settings.max_connections_per_client,
        "per_client": Counter(), "opened_at": {}})


class StartupFrozen(uvicorn.Server):
    """A uvicorn server that, once started, leaves what startup made (modules, the app, its
    clients: ~70,000 objects in the OMS) out of every later garbage collection: a full
    collection walks all it tracks, and beside 1,000 slow clients the OMS's took 15-115 ms,
    each a pause for every order in flight. (gc.freeze after a collection, so nothing that
    is garbage already is kept for ever.)"""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        gc.collect()
        gc.freeze()


def serve(app: str, settings: KitSettings, **extra: Any) -> None:
    """uvicorn.run's one-process path, with StartupFrozen for its server."""
    server = StartupFrozen(uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="uvloop", http=bounded(settings),
        timeout_keep_alive=int(max(1, settings.keep_alive_s)),
        limit_concurrency=None,  # BoundedHttp counts requests that arrived, not connections
        backlog=max(2048, settings.max_connections),
        # uvicorn hints an int; it is a timeout given to asyncio.wait_for, any number works
        timeout_graceful_shutdown=settings.drain_s,  # type: ignore[arg-type]
        **extra))
    server.run()
    if not server.started:  # as uvicorn.run: the lifespan failed or the port was taken
        sys.exit(STARTUP_FAILURE)
