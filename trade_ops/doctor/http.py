"""HTTP probing for the checks: one call, its time, and a plain-words error.

Transport errors never escape: a probe gets (response or None, error text, ms), so a
refused connection reads "connection refused" and a hang "no answer within 1.0s".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Answer", "call", "json_of"]


@dataclass
class Answer:
    response: httpx.Response | None
    error: str | None
    ms: float

    @property
    def refused(self) -> bool:
        return self.error is not None and self.error.startswith("connection refused")

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.startswith("no answer")


async def call(http: httpx.AsyncClient, method: str, url: str, timeout: float, **kwargs: Any) -> Answer:
    started = time.perf_counter()
    try:
        resp = await http.request(method, url, timeout=timeout, **kwargs)
        return Answer(resp, None, (time.perf_counter() - started) * 1000)
    except httpx.TimeoutException:
        error = f"no answer within {timeout:.1f}s (hanging?)"
    except httpx.ConnectError:
        error = f"connection refused at {url}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__} from {url}: {exc}"
    return Answer(None, error, (time.perf_counter() - started) * 1000)


def json_of(resp: httpx.Response | None) -> Any:
    if resp is None:
        return None
    try:
        return resp.json()
    except ValueError:
        return None
