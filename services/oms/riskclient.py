"""The risk check from oms: NATS request/reply (default) or HTTP, with one timeout.

Every way risk can fail to answer (no responders, timeout, connection down, a non-200,
an answer that is not a contract.RiskCheckReply) becomes RiskUnavailable, mapped at this
one boundary; the handler decides fail closed (503) or fail open (accept, flagged). An
answer is decoded as the contract's reply type, so anything else that answers on
`risk.check` (a JetStream publish acknowledgement, when a stream held the subject) is an
error, never a verdict: an order is then 503, never "rejected by risk".
"""

from __future__ import annotations

import time
from typing import Protocol

from nats.aio.client import Client as NATS

from services import contract
from services.kit import Check
from services.oms.leanhttp import LeanHttp, LeanHttpError

__all__ = ["HttpRisk", "NatsRisk", "RiskClient", "RiskUnavailable", "verdict"]


class RiskUnavailable(Exception):
    """risk did not answer in time, or answered with an error."""


class RiskClient(Protocol):
    transport: str

    async def check(self, payload: bytes) -> contract.RiskCheckReply: ...
    async def probe(self) -> Check: ...
    async def aclose(self) -> None: ...


def verdict(data: bytes, transport: str) -> contract.RiskCheckReply:
    """The answer as the contract's reply type; anything else is risk not answering."""
    try:
        return contract.decode(data, contract.RiskCheckReply)
    except ValueError as exc:
        raise RiskUnavailable(f"risk over {transport}: the answer is not a risk verdict ({exc}): "
                              f"{data[:120]!r}") from None


class NatsRisk:
    transport = "nats"

    def __init__(self, nc: NATS, timeout: float) -> None:
        self.nc = nc
        self.timeout = timeout

    async def check(self, payload: bytes) -> contract.RiskCheckReply:
        try:
            msg = await self.nc.request(contract.RISK_CHECK, payload, timeout=self.timeout)
        except Exception as exc:
            raise RiskUnavailable(f"risk over nats: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
        return verdict(msg.data, "nats")

    async def probe(self) -> Check:
        started = time.perf_counter()
        await self.check(b"{}")  # answered with "invalid request": proves a responder is there
        return Check("risk", "responseTime", "pass", "component",
                     round((time.perf_counter() - started) * 1000, 3), "ms")

    async def aclose(self) -> None:
        return None


class HttpRisk:
    transport = "http"

    def __init__(self, base_url: str, timeout: float) -> None:
        self.client = LeanHttp(base_url, timeout)

    async def _call(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return await self.client.request(method, path, body)
        except LeanHttpError as exc:
            raise RiskUnavailable(f"risk over http: {exc}") from exc

    async def check(self, payload: bytes) -> contract.RiskCheckReply:
        status, body = await self._call("POST", "/check", payload)
        if status != 200:
            raise RiskUnavailable(f"risk over http answered {status}: {body[:200]!r}")
        return verdict(body, "http")

    async def probe(self) -> Check:
        started = time.perf_counter()
        status, _ = await self._call("GET", "/livez")
        ms = round((time.perf_counter() - started) * 1000, 3)
        if status != 200:
            return Check("risk", "responseTime", "fail", "component", ms, "ms",
                         f"/livez answered {status}")
        return Check("risk", "responseTime", "pass", "component", ms, "ms")

    async def aclose(self) -> None:
        await self.client.aclose()
