"""A Target: what the bench sends for request number i, how it is carried (`Transport`) and
how each answer is classified (the outcome kinds below). make_target (targets.py) builds the
HTTP ones, bus_targets.py those answered on the bus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from trade_ops.bench.client import Connection

__all__ = ["CONNECTION", "HTTP_ERROR", "KIND_NAMES", "OK", "PROTOCOL", "REJECTED", "TIMEOUT", "Target",
           "Transport", "by_status"]

# outcome kinds, one small int per request
OK, REJECTED, HTTP_ERROR, TIMEOUT, CONNECTION, PROTOCOL = range(6)
KIND_NAMES = {TIMEOUT: "timeout", CONNECTION: "connection", PROTOCOL: "protocol"}

class Transport(Protocol):
    """What carries one request at a time and returns (status, body); client.Connection is
    the HTTP one. Raises client.RequestTimeout, ConnectionFailed or ProtocolFailed."""

    @property
    def connects(self) -> int: ...

    async def request(self, data: bytes, timeout: float) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


@dataclass
class Target:
    name: str
    url: str
    method: str = "GET"
    host: str = "127.0.0.1"
    port: int = 80
    path: str = "/"
    head: bytes = b""
    body: Callable[[int], bytes] | None = None  # request i -> body bytes
    classify: Callable[[int, bytes], int] = field(default=lambda status, body: by_status(status))
    describe: dict[str, Any] = field(default_factory=dict)
    # A rejection's sample: the OMS's own words ("RISK_REJECTED: no responders"), else its body.
    why_rejected: Callable[[int, bytes], str | bytes] = field(default=lambda status, body: body)
    framed: bool = True  # an HTTP request; False: the body alone is the request (a bus message)
    connect: Callable[[], Transport] | None = None  # called on the load's loop; None: HTTP
    finish: Callable[[], Awaitable[None]] | None = None  # at the end of each load, on its loop

    def request(self, i: int) -> bytes:
        if not self.framed:
            return self.body(i) if self.body is not None else b""
        if self.body is None:
            return self.head + b"Content-Length: 0\r\n\r\n"
        payload = self.body(i)
        return b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(payload), payload)

    def connection(self) -> Transport:
        return self.connect() if self.connect is not None else Connection(self.host, self.port)

    async def finished(self) -> None:
        if self.finish is not None:
            await self.finish()


def by_status(status: int) -> int:
    return OK if 200 <= status < 400 else HTTP_ERROR
