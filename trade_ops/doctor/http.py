"""HTTP probing for the checks: one call, its time, and a plain-words error.

Transport errors never escape: a probe gets (response or None, error text, ms), so a
refused connection reads "connection refused" and a hang "no answer within 1.0s".

Every answer is read up to a size limit, decompressed by doctor itself under the same
limit: a hostile or broken server (an endless chunked or close-delimited body, a gzip
bomb, a 10 MB health body) took doctor to 0.7-1.8 GB when bodies were read whole, and
httpx's decoder inflates a whole network chunk at once (64 KB of gzip is 64 MB). A body
over the limit is an error of that call, "GET /health: body over 64 KB (10 MB announced),
read 64 KB", and none of it reaches the report.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["LIMITS", "Answer", "PoolPerOrigin", "body_limit", "call", "json_of"]

KB = 1024
# What a sane server answers on each path, with room; anything else 1 MB.
LIMITS = {"/health": 64 * KB, "/livez": 64 * KB, "/healthz": 64 * KB, "/openapi.json": 2048 * KB,
          "/metrics": 4096 * KB, "/connz": 4096 * KB, "/jsz": 4096 * KB}
DEFAULT_LIMIT = 1024 * KB
# Decoders doctor applies itself, so the limit holds on what they produce.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_ACCEPT = {"accept-encoding": "gzip, deflate"}


@dataclass
class Answer:
    response: httpx.Response | None
    error: str | None
    ms: float
    oversized: bool = False  # the body was over its limit (the error says how far)

    @property
    def refused(self) -> bool:
        return self.error is not None and self.error.startswith("connection refused")

    @property
    def timed_out(self) -> bool:
        return self.error is not None and self.error.startswith("no answer")


def body_limit(url: str) -> int:
    path = httpx.URL(url).path.rstrip("/") or "/"
    return LIMITS.get(path, LIMITS.get("/" + path.rsplit("/", 1)[-1], DEFAULT_LIMIT))


def _size(n: int) -> str:
    return f"{n / (1024 * KB):.0f} MB" if n >= 1024 * KB else f"{n / KB:.0f} KB" if n >= KB else f"{n} B"


class _TooLarge(Exception):
    pass


class _Bounded:
    """Raw body chunks in, at most `limit` decoded bytes out (or _TooLarge)."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.parts: list[bytes] = []
        self.inflate = zlib.decompressobj(_WBITS[encoding]) if encoding in _WBITS else None

    def feed(self, raw: bytes) -> None:
        if self.inflate is None:
            self._keep(raw)
            return
        data = raw
        while data:
            out = self.inflate.decompress(data, self.limit - self.size + 1)
            self._keep(out)
            data = self.inflate.unconsumed_tail

    def _keep(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise _TooLarge
        self.parts.append(chunk)


async def call(http: httpx.AsyncClient, method: str, url: str, timeout: float, *,
               limit: int | None = None, **kwargs: Any) -> Answer:
    """One request, its body read whole up to `limit` bytes (by default the path's, LIMITS)."""
    started = time.perf_counter()
    limit = limit or body_limit(url)
    headers = {**_ACCEPT, **(kwargs.pop("headers", None) or {})}
    what = f"{method} {httpx.URL(url).path}"
    try:
        async with asyncio.timeout(2 * timeout), \
                http.stream(method, url, timeout=timeout, headers=headers, **kwargs) as resp:
            encoding = resp.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in (*_WBITS, "identity", ""):
                return Answer(None, f"{what}: answered in {encoding!r}, an encoding doctor did not ask for",
                              _ms(started))
            body = _Bounded(encoding, limit)
            try:
                async for raw in resp.aiter_raw():
                    body.feed(raw)
            except _TooLarge:
                announced = resp.headers.get("content-length")
                packed = "" if encoding in ("identity", "") else f"{encoding}, "
                said = f" ({packed}{_size(int(announced))} announced)" if (announced or "").isdigit() else \
                    f" ({packed}no length announced)"
                return Answer(None, f"{what}: body over {_size(limit)}{said}, read {_size(limit)}",
                              _ms(started), oversized=True)
            headers_out = [(k, v) for k, v in resp.headers.multi_items()
                           if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
            answer = httpx.Response(resp.status_code, headers=headers_out, content=b"".join(body.parts),
                                    request=resp.request)
        return Answer(answer, None, _ms(started))
    except httpx.TimeoutException:
        error = f"no answer within {timeout:.1f}s (hanging?)"
    except TimeoutError:  # headers in time, and a body that trickles on
        error = f"no whole answer within {2 * timeout:.1f}s (a body that never ends?)"
    except httpx.ConnectError:
        error = f"connection refused at {url}"
    except (httpx.HTTPError, zlib.error) as exc:
        error = f"{type(exc).__name__} from {url}: {exc}"
    return Answer(None, error, _ms(started))


class PoolPerOrigin(httpx.AsyncBaseTransport):
    """doctor's transport: a connection pool per origin (scheme, host, port), made on first use.

    httpcore's pool re-examines every connection it holds on each request and each closed
    response, and each examination of a kept-alive connection asks its socket for the peer
    and polls it (encode/httpcore#1035, open). doctor's one client talks to a dozen services
    at once: one pool for all of them spent 70-97 ms of doctor's event loop per run on the
    foreign fixture (127 passes over ~18 connections, measured on a loaded 2-core machine);
    a pool per origin examines its own one or two.

    TLS: one context for every https origin, made for the first one. httpx makes its own
    when a client is created, loading the CA bundle at the start of every run, while the
    stacks doctor examines mostly answer plain http.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._pools: dict[tuple[str, str, int | None], httpx.AsyncHTTPTransport] = {}
        self._tls: ssl.SSLContext | None = None

    def _context(self, scheme: str) -> ssl.SSLContext:
        if scheme != "https":  # plain http: the pool never uses it, and it loads no CA bundle
            return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self._tls is None:
            self._tls = httpx.create_ssl_context(trust_env=False)
        return self._tls

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = httpx.AsyncHTTPTransport(
                verify=self._context(url.scheme), trust_env=False, limits=self._limits)
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def json_of(resp: httpx.Response | None) -> Any:
    if resp is None:
        return None
    try:
        return resp.json()
    except ValueError:
        return None
