"""execution-quality on real NATS and Valkey: hand-built ticks, orders and fills."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

T = 1_700_000_000_000.0


def tick(symbol: str, seq: int, bid: float, ask: float) -> tuple[str, dict[str, Any]]:
    return f"market.tick.{symbol}", {"id": f"{symbol}-{seq}", "symbol": symbol, "seq": seq, "bid": bid,
                                     "ask": ask, "last": bid, "bid_size": 1, "ask_size": 1,
                                     "volume": 0, "ts": T}


def fill(fill_id: str, order_id: str, symbol: str, side: str, qty: float, price: float,
         latency_ms: float, arrival_mid: float | None) -> tuple[str, dict[str, Any]]:
    """A fill as the venue sends it: its order's creation time and arrival mid on it."""
    return f"exec.fill.{symbol}", {
        "id": fill_id, "fill_id": fill_id, "order_id": order_id, "client_order_id": None,
        "account": "tca", "symbol": symbol, "side": side, "quantity": qty, "price": price,
        "cumulative_quantity": qty, "leaves_quantity": 0, "final": False, "order_ts": T,
        "arrival_mid": arrival_mid, "ts": T + latency_ms}


@pytest.fixture
def tca(valkey_server: Proc, nats_server: Proc, tmp_path: Path) -> Iterator[Proc]:
    proc = start_service("execution-quality", tmp_path, infra_env(valkey_server, nats_server))
    yield proc
    proc.stop()


def test_slippage_and_latency_on_a_hand_computed_example(tca: Proc, nats_server: Proc) -> None:
    publish(nats_server.url, [tick("TCAA", 1, 99.99, 100.01)])  # mid 100
    get_json_until(f"{tca.url}/tca/mids", lambda b: b["mids"].get("TCAA") == pytest.approx(100.0))
    publish(nats_server.url, [
        fill("tca-f1", "tca-o1", "TCAA", "buy", 1, 100.05, 10, 100.0),  # +5 bps, 10 ms
        fill("tca-f2", "tca-o2", "TCAA", "sell", 3, 99.90, 20, 100.0),  # +10 bps, 20 ms
        fill("tca-f3", "tca-o3", "TCAA", "buy", 1, 99.98, 30, 100.0),  # -2 bps, 30 ms
        fill("tca-f9", "tca-o9", "TCAB", "buy", 2, 50.0, 7, None),  # risk had no quote for it
    ])
    url = f"{tca.url}/tca"
    get_json_until(url, lambda b: b["symbols"].get("TCAA", {}).get("fills") == 3, params={"symbol": "TCAA"})
    # The mid moves after the orders arrived: o1's next fill is still measured against its
    # arrival mid (100, on the fill), not the mid now.
    publish(nats_server.url, [tick("TCAA", 2, 199.99, 200.01)])
    get_json_until(f"{tca.url}/tca/mids", lambda b: b["mids"]["TCAA"] == pytest.approx(200.0))
    f4 = fill("tca-f4", "tca-o1", "TCAA", "buy", 1, 100.05, 40, 100.0)
    # ... and a redelivered fill (same fill id, another message id) counts once.
    publish(nats_server.url, [f4, (*f4, "tca-f4-redelivered")])

    body = get_json_until(url, lambda b: b["symbols"].get("TCAA", {}).get("fills") == 4)
    a = body["symbols"]["TCAA"]
    assert a["mid"] == pytest.approx(200.0)
    # slippage 5, 10, -2, 5 bps on quantities 1, 3, 1, 1: (5 + 30 - 2 + 5) / 6
    assert a["slippage_bps"]["weighted_avg"] == pytest.approx(38 / 6, abs=1e-6)
    assert a["slippage_bps"]["p50"] == pytest.approx(5.0)
    assert a["slippage_bps"]["worst"] == pytest.approx(10.0)
    assert a["latency_ms"] == {"count": 4, "p50": 25.0, "p90": 37.0, "p99": 39.7, "max": 40.0}

    b = get_json_until(url, lambda b: "TCAB" in b["symbols"])["symbols"]["TCAB"]
    assert b["fills"] == 1 and b["slippage_bps"]["without_arrival_mid"] == 1
    assert b["latency_ms"]["p50"] == 7.0


def test_bad_query_parameters_are_4xx_with_a_reason(tca: Proc) -> None:
    resp = httpx.get(f"{tca.url}/tca", params={"symbol": "NOSUCH"})
    assert resp.status_code == 404 and "unknown symbol 'NOSUCH'" in resp.json()["detail"]
    resp = httpx.get(f"{tca.url}/tca", params={"symbol": "bad symbol!"})
    assert resp.status_code == 422 and "query.symbol" in resp.json()["detail"]
