"""gateway: the random walk (pure), and the live process publishing ticks and alt-data."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import nats
import pytest

from services.gateway.market import Market
from tests.bus_helpers import get_json_until, infra_env
from tests.helpers import Proc, json_object
from tests.orderpath import start

pytestmark = pytest.mark.process


def test_random_walk_keeps_bid_below_ask_and_rolls_a_24h_window() -> None:
    t0 = 1_000_000.0
    market = Market(["BTCUSDT", "SOLUSDT", "TINYUSDT"], volatility=0.01, rng=random.Random(7), now=t0)
    for i in range(3000):
        for symbol in market.quotes:
            q = market.step(symbol, now=t0 + i * 60)  # one tick a minute: 50 hours
            assert 0 < q.bid < q.ask
    ticker = market.quotes["SOLUSDT"].ticker()
    window = market.quotes["SOLUSDT"].window
    assert len(window) == 24 * 60  # older minutes rolled out
    assert ticker["volume_24h"] == pytest.approx(sum(b.volume for b in window), rel=1e-6)
    assert ticker["change_24h"] == pytest.approx(ticker["last"] - window[0].open)
    assert ticker["low_24h"] <= ticker["last"] <= ticker["high_24h"]


@pytest.fixture(scope="module")
def gateway(nats_server: Proc,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, httpx.Client]]:
    env = infra_env(None, nats_server, log_level="warning", alt_interval_s="0.2",
                    symbols="BTCUSDT,ETHUSDT,SOLUSDT,DOGEUSDT")
    proc, client = start("gateway", tmp_path_factory.mktemp("gateway"), env)
    yield proc, client
    proc.stop()


def test_tickers_are_live_and_moving(gateway: tuple[Proc, httpx.Client]) -> None:
    proc, client = gateway
    first = client.get("/tickers").json()
    assert isinstance(first, list)  # the seed's contract: a JSON list of tickers
    assert [t["symbol"] for t in first] == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
    assert all(0 < t["bid"] < t["ask"] and t["volume_24h"] > 0 for t in first)
    for t in first:
        assert t["last_price"] == t["last"] and "change_24h" in t
        stamp = datetime.fromisoformat(t["timestamp"])
        assert stamp.tzinfo is not None and abs(stamp.timestamp() * 1000 - t["ts"]) < 1
    seq = first[0]["seq"]
    moved = get_json_until(f"{proc.url}/ticker/btcusdt", lambda t: t["seq"] > seq + 3)
    assert moved["symbol"] == "BTCUSDT" and "change_24h" in moved
    assert set(first[0]) == set(moved)  # /ticker/{symbol} is the same object


def test_unknown_symbol_is_404_with_a_reason(gateway: tuple[Proc, httpx.Client]) -> None:
    resp = gateway[1].get("/ticker/NOPEUSDT")
    assert resp.status_code == 404
    assert "unknown symbol 'NOPEUSDT'" in resp.json()["detail"]
    assert gateway[1].get("/ticker/" + "X" * 300).status_code == 404


def test_ticks_and_alt_events_land_in_their_streams(gateway: tuple[Proc, httpx.Client],
                                                    nats_server: Proc) -> None:
    async def newest(stream: str, subject: str) -> dict[str, Any]:
        nc = await nats.connect(nats_server.url)
        try:
            for _ in range(50):
                try:
                    msg = await nc.jetstream().get_last_msg(stream, subject)
                    return json_object(msg.data)
                except nats.js.errors.NotFoundError:
                    await asyncio.sleep(0.1)
            raise AssertionError(f"nothing on {subject}")
        finally:
            await nc.close()

    tick = asyncio.run(newest("TICKS", "market.tick.SOLUSDT"))
    assert tick["id"] == f"SOLUSDT-{tick['seq']}" and tick["bid"] < tick["ask"]
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]

    async def any_alt() -> dict[str, Any]:
        for _ in range(50):
            for s in symbols:
                try:
                    return await newest("ALT", f"alt.news.{s}")
                except AssertionError:
                    continue
        raise AssertionError("no alt events")

    alt = asyncio.run(any_alt())
    assert alt["category"] == "news" and -1 <= alt["sentiment"] <= 1 and alt["headline"]
