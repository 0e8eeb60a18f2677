"""hot-cache on a real NATS: hand-built ticks, bars and fills in (positions through ptrc, the
one ledger), /snapshot out, restart-safe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

T = 1_700_000_000_000  # epoch ms (bar starts are integers in the contract)


def tick(seq: int, bid: float, ask: float) -> tuple[str, dict[str, Any]]:
    return "market.tick.HCA", {"id": f"HCA-{seq}", "symbol": "HCA", "seq": seq, "bid": bid, "ask": ask,
                               "last": bid, "bid_size": 1, "ask_size": 1, "volume": 1, "ts": T + seq}


def bar(interval: str, start: int, close: float) -> tuple[str, dict[str, Any]]:
    return f"market.bar.{interval}.HCA", {
        "id": f"HCA-{interval}-{start:.0f}", "symbol": "HCA", "interval": interval, "start": start,
        "end": start + 60_000, "open": close, "high": close, "low": close, "close": close,
        "volume": 3, "trades": 3, "ts": start + 60_000}


def fill(n: int, side: str, qty: float, price: float, account: str = "hc") -> tuple[str, dict[str, Any]]:
    fill_id = f"hc-fill-{n}"
    return "exec.fill.HCA", {"id": fill_id, "fill_id": fill_id, "order_id": f"hc-order-{n}",
                             "client_order_id": None, "account": account, "symbol": "HCA", "side": side,
                             "quantity": qty, "price": price, "cumulative_quantity": qty,
                             "leaves_quantity": 0, "final": True, "order_ts": T, "ts": T + n}


def start(tmp_path: Path, nats: Proc) -> Proc:
    return start_service("hot-cache", tmp_path, infra_env(None, nats))


@pytest.fixture
def ptrc(fresh_valkey: Proc, fresh_nats: Proc, tmp_path: Path) -> Iterator[Proc]:
    proc = start_service("ptrc", tmp_path, infra_env(fresh_valkey, fresh_nats, log_level="warning"))
    try:
        yield proc
    finally:
        proc.stop()


def test_snapshot_reflects_the_bus_and_survives_a_restart(fresh_nats: Proc, ptrc: Proc,
                                                          tmp_path: Path) -> None:
    f1 = fill(1, "buy", 2, 100.0)
    publish(fresh_nats.url, [
        f1, fill(2, "buy", 1, 130.0), (*f1, "hc-fill-1-again"),  # a redelivery counts once
        fill(3, "sell", 1, 125.5),  # realizes 15.5 against the 110 average
        fill(4, "buy", 7, 1.0, account="someone-else"),
        ("exec.cancelled", {"id": "cancelled-x", "ts": T, "order_id": "x", "account": "hc",
                            "symbol": "HCA", "cancelled_quantity": 1, "reason": "test"}),
        tick(1, 89.99, 90.01), tick(2, 99.99, 100.01),  # mid 100: the latest tick wins
        bar("1m", T, 99.0), bar("5m", T, 98.0),
    ])
    svc = start(tmp_path, fresh_nats)
    try:
        url = f"{svc.url}/snapshot"
        s = get_json_until(url, lambda s: s["warm"] and "HCA" in s["bars"]
                           and s["tickers"].get("HCA", {}).get("mid") == 100.0, params={"account": "hc"})
        assert s["positions"]["HCA"] == pytest.approx(
            {"quantity": 2, "avg_price": 110.0, "realized": 15.5, "mark": 100.0, "unrealized": -20.0})
        assert s["pnl"] == pytest.approx({"realized": 15.5, "unrealized": -20.0, "total": -4.5})
        assert s["bars"]["HCA"]["1m"]["close"] == 99.0 and s["bars"]["HCA"]["5m"]["close"] == 98.0
        assert httpx.get(f"{svc.url}/health").json()["status"] == "pass"

        # Live: the position closes at 120 while the service runs.
        publish(fresh_nats.url, [tick(3, 119.99, 120.01), fill(5, "sell", 2, 120.0),
                                 bar("1m", T + 60_000, 120.0)])
        s = get_json_until(url, lambda s: s["positions"]["HCA"]["quantity"] == 0
                           and s["bars"]["HCA"]["1m"]["close"] == 120.0, params={"account": "hc"})
        assert s["pnl"] == pytest.approx({"realized": 35.5, "unrealized": 0.0, "total": 35.5})
    finally:
        svc.stop()

    svc = start(tmp_path, fresh_nats)  # a restart reads the positions again: nothing is lost
    try:
        s = get_json_until(f"{svc.url}/snapshot", lambda s: s["warm"] and "HCA" in s["tickers"]
                           and "HCA" in s["bars"], params={"account": "hc", "symbols": "hca"})
        assert s["positions"]["HCA"]["realized"] == pytest.approx(35.5)
        assert s["tickers"]["HCA"]["mid"] == pytest.approx(120.0)
        assert s["bars"]["HCA"]["1m"]["close"] == 120.0

        other = httpx.get(f"{svc.url}/snapshot", params={"account": "someone-else"}).json()
        assert other["positions"]["HCA"]["quantity"] == 7

        bad = httpx.get(f"{svc.url}/snapshot", params={"account": "no spaces!"})
        assert bad.status_code == 422 and "query.account" in bad.json()["detail"]
        bad = httpx.get(f"{svc.url}/snapshot", params={"symbols": "HCA,,x"})
        assert bad.status_code == 422 and "query.symbols" in bad.json()["detail"]
        bad = httpx.get(f"{svc.url}/snapshot", params={"symbols": "HCA,NOPE"})
        assert bad.status_code == 404 and "NOPE" in bad.json()["detail"]
    finally:
        svc.stop()
