"""A minimal keep-alive HTTP/1.1 client for one JSON service (oms -> risk `/check`).

httpx costs ~0.4 ms a request in client-side Python; this costs a few microseconds:
a pool of asyncio protocol connections, a fixed request head, responses framed by
Content-Length (what uvicorn always sends for JSON). No redirects, no chunked bodies,
no TLS: it talks to a sibling service on a trusted network. A request that meets a
connection the server just closed is retried once on a fresh one (only for idempotent
calls, which `/check` is: a pure query). It uses asyncio alone (no HTTP library, so nothing
of one to pin); httpx is what it replaces, measured with httpx 0.27-0.29.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["LeanHttp", "LeanHttpError"]


class LeanHttpError(Exception):
    """The request could not be sent or its answer could not be read."""


class _Conn(asyncio.Protocol):
    # Set by connection_made, which runs before create_connection returns the protocol:
    # every _Conn the client holds has one.
    transport: asyncio.Transport

    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            answer = self._parse()
        except (ValueError, IndexError) as exc:
            self.waiter.set_exception(LeanHttpError(f"unreadable answer: {exc}"))
            return
        if answer is not None:
            self.waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed by the server"))

    def _parse(self) -> tuple[int, bytes, bool] | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise ValueError("no content-length")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17: stop if stop > 0 else None])
        total = end + 4 + length
        if len(self.buf) < total:
            return None
        body = bytes(self.buf[end + 4:total])
        del self.buf[:total]
        return int(head[9:12]), body, b"\r\nconnection: close" in head


class LeanHttp:
    def __init__(self, base_url: str, timeout: float, max_idle: int = 32) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"need an http://host:port URL, got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout = timeout
        self.max_idle = max_idle
        self._idle: list[_Conn] = []
        self._host_header = f"Host: {self.host}:{self.port}\r\n".encode()

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        return conn

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    return await self._once(method, path, body, reuse=True)
                except ConnectionResetError:
                    return await self._once(method, path, body, reuse=False)
        except TimeoutError as exc:
            raise LeanHttpError(f"no answer in {self.timeout:g}s") from exc
        except OSError as exc:
            raise LeanHttpError(f"{type(exc).__name__}: {exc}") from exc

    async def _once(self, method: str, path: str, body: bytes, reuse: bool) -> tuple[int, bytes]:
        conn = None
        while reuse and self._idle:
            candidate = self._idle.pop()
            if not candidate.closed:
                conn = candidate
                break
        if conn is None:
            conn = await self._connect()
        conn.waiter = asyncio.get_running_loop().create_future()
        conn.transport.write(b"%s %s HTTP/1.1\r\n%sContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s"
                             % (method.encode(), path.encode(), self._host_header, len(body), body))
        try:
            status, answer, close = await conn.waiter
        except BaseException:
            conn.transport.close()
            raise
        if close or conn.closed or len(self._idle) >= self.max_idle:
            conn.transport.close()
        else:
            self._idle.append(conn)
        return status, answer

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.transport.close()
        self._idle.clear()
