"""The bench's HTTP client against a real (null) endpoint: keep-alive, and no reuse of a
connection idle long enough for the server to be closing it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from trade_ops.bench.client import MAX_IDLE_S, Connection, build_head
from trade_ops.bench.null_server import NullServer

pytestmark = pytest.mark.process


async def _requests(url: str, max_idle: float, pauses: list[float]) -> tuple[list[int], list[int]]:
    """A request, then one after each pause: the statuses, and the connects so far after each."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conn = Connection(host, port, max_idle=max_idle)
    data = build_head("GET", host, port, "/") + b"\r\n"
    statuses, connects = [], []
    try:
        for pause in [0.0, *pauses]:
            await asyncio.sleep(pause)
            status, _ = await conn.request(data, timeout=2.0)
            statuses.append(status)
            connects.append(conn.connects)
    finally:
        conn.close()
    return statuses, connects


def test_a_connection_idle_longer_than_max_idle_is_opened_anew() -> None:
    with NullServer() as url:
        statuses, connects = asyncio.run(_requests(url, 0.2, [0.0, 0.0, 0.35, 0.05, 0.35]))
    assert statuses == [200] * 6
    # kept alive while busy; opened anew after each pause longer than max_idle
    assert connects == [1, 1, 1, 2, 2, 3]


def test_the_idle_limit_is_below_the_keep_alive_of_the_services_it_measures() -> None:
    from services.kit.settings import KitSettings

    assert KitSettings().keep_alive_s > MAX_IDLE_S  # else the race it avoids is back
