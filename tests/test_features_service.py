"""feast-pipeline on real NATS and Valkey: hand-built bars in, hand-computed features out."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

SYMBOL = "FEATA"


def bar(start: int, close: float, volume: float, interval: str = "1m", high: float | None = None,
        low: float | None = None, event_id: str | None = None) -> tuple[str, dict[str, object]]:
    event = {"id": event_id or f"{SYMBOL}-{interval}-{start}", "symbol": SYMBOL, "interval": interval,
             "start": start, "end": start + 60_000, "open": close, "close": close,
             "high": close if high is None else high, "low": close if low is None else low,
             "volume": volume, "trades": 1, "ts": start + 60_000}
    return f"market.bar.{interval}.{SYMBOL}", event


@pytest.fixture
def feast(valkey_server: Proc, nats_server: Proc, tmp_path: Path) -> Iterator[Proc]:
    proc = start_service("feast-pipeline", tmp_path,
                         infra_env(valkey_server, nats_server, features_window="3"))
    yield proc
    proc.stop()


def test_features_from_published_bars(feast: Proc, nats_server: Proc) -> None:
    base = 1_700_000_040_000
    publish(nats_server.url, [
        bar(base, 100.0, 10),
        bar(base + 60_000, 110.0, 10),
        bar(base + 120_000, 50.0, 99, event_id="first-version"),  # replaced by the same start below
        bar(base + 120_000, 99.0, 20, event_id="corrected"),
        bar(base + 180_000, 1.0, 1_000, interval="5m"),  # another interval: not a 1m feature
        bar(base + 180_000, 108.9, 10, high=110.0, low=107.8),
    ])
    f = get_json_until(f"{feast.url}/features/{SYMBOL.lower()}",
                       lambda f: f["bar_start"] == base + 180_000)
    assert f["symbol"] == SYMBOL and f["interval"] == "1m" and f["bars"] == 4
    assert f["last_return"] == pytest.approx(0.10)
    assert f["volatility"] == pytest.approx(0.2 / math.sqrt(3))
    assert f["vwap"] == pytest.approx(104.225)
    assert f["vwap_distance_bps"] == pytest.approx((108.9 - 104.225) / 104.225 * 10_000)
    assert SYMBOL in httpx.get(f"{feast.url}/features").json()["symbols"]


def test_unknown_and_malformed_symbols_are_4xx_with_a_reason(feast: Proc) -> None:
    resp = httpx.get(f"{feast.url}/features/NOPE")
    assert resp.status_code == 404 and "unknown symbol 'NOPE'" in resp.json()["detail"]
    resp = httpx.get(f"{feast.url}/features/bad$symbol")
    assert resp.status_code == 422 and "symbol" in resp.json()["detail"]
