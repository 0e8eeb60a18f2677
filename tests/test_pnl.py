"""pnl: P&L from hand-built fills and ticks, snapshots in the lake, /health over the lake."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from deltalake import DeltaTable

from services.contract import now_ms
from tests.bus_helpers import get_json_until, publish
from tests.helpers import Proc, start_service, wait_until

pytestmark = pytest.mark.process

ACCOUNT = "pnl-" + uuid.uuid4().hex[:8]
SYMBOL = "P" + uuid.uuid4().hex[:6].upper()


@pytest.fixture(scope="module")
def pnls(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Proc, Proc, Path]]:
    """A pnl with a writable lake, and one whose lake is a file (cannot be written)."""
    workdir = tmp_path_factory.mktemp("pnl")
    blocked = workdir / "not-a-dir"
    blocked.write_text("a file where the lake should be")
    env = {"TRADE_OPS_VALKEY_URL": valkey_server.url, "TRADE_OPS_NATS_URL": nats_server.url,
           "TRADE_OPS_PNL_SNAPSHOT_S": "0.3", "TRADE_OPS_LOG_LEVEL": "warning"}
    lakes = [workdir / "lake", blocked / "lake"]
    with ThreadPoolExecutor(3) as pool:
        good, bad, ptrc = pool.map(lambda name_lake: start_service(
            name_lake[0], workdir, {**env, "TRADE_OPS_LAKE_URI": str(name_lake[1])}),
            [("pnl", lakes[0]), ("pnl", lakes[1]), ("ptrc", lakes[0])])
    try:
        yield good, bad, lakes[0]  # positions come from ptrc, the one ledger
    finally:
        for proc in (good, bad, ptrc):
            proc.stop()


def fill(n: int, side: str, quantity: float, price: float) -> tuple[str, dict[str, object]]:
    fid = f"{ACCOUNT}-{n}-1"
    return f"exec.fill.{SYMBOL}", {
        "id": fid, "fill_id": fid, "order_id": f"{ACCOUNT}-{n}", "account": ACCOUNT, "symbol": SYMBOL,
        "side": side, "quantity": quantity, "price": price, "ts": now_ms()}


def test_pnl_and_its_lake_snapshot(pnls: tuple[Proc, Proc, Path], nats_server: Proc) -> None:
    """Short 4 @ 25.00 and 2 @ 26.50 (avg 25.50), cover 3 @ 24.10: realized 3 * 1.40 = 4.20;
    3 short marked at mid 24.00: unrealized 3 * 1.50 = 4.50."""
    good, _, lake = pnls
    publish(nats_server.url, [
        (f"exec.fill.{SYMBOL}", {"id": f"{ACCOUNT}-bad", "symbol": SYMBOL, "side": "buy"}),  # skipped
        fill(1, "sell", 4, 25.00), fill(2, "sell", 2, 26.50), fill(3, "buy", 3, 24.10),
        fill(3, "buy", 3, 24.10),  # a redelivered duplicate: the same id is dropped by JetStream
        (f"market.tick.{SYMBOL}", {"id": f"{SYMBOL}-1", "symbol": SYMBOL, "seq": 1, "bid": 23.95,
                                   "ask": 24.05, "ts": now_ms()})])
    doc = get_json_until(f"{good.url}/pnl", lambda d: bool(d["symbols"]) and d["symbols"][0]["quantity"]
                         == -3 and d["symbols"][0]["mark"] is not None, params={"account": ACCOUNT})
    [row] = doc["symbols"]
    assert row["avg_price"] == pytest.approx(25.50, abs=0.005)
    assert row["realized"] == pytest.approx(4.20, abs=0.005)
    assert row["unrealized"] == pytest.approx(4.50, abs=0.005)
    assert doc["total"] == pytest.approx(8.70, abs=0.005)

    def snapshot_rows() -> list[dict[str, object]]:
        if not DeltaTable.is_deltatable(str(lake / "pnl_snapshots")):
            return []
        rows = DeltaTable(str(lake / "pnl_snapshots")).to_pyarrow_table().to_pylist()
        return [r for r in rows if r["account"] == ACCOUNT and r["quantity"] == -3]

    assert wait_until(lambda: bool(snapshot_rows()), 15), "no pnl snapshot landed in the lake"
    snap = snapshot_rows()[-1]
    assert snap["symbol"] == SYMBOL and snap["realized"] == pytest.approx(4.20, abs=0.005)
    assert snap["unrealized"] == pytest.approx(4.50, abs=0.005)


def test_health_checks_the_lake(pnls: tuple[Proc, Proc, Path]) -> None:
    good, bad, _ = pnls
    ok = httpx.get(f"{good.url}/health", timeout=5)
    assert ok.status_code == 200, ok.text
    assert set(ok.json()["checks"]) >= {"nats:responseTime", "lake:writable", "positions:snapshots"}
    assert "valkey:responseTime" not in ok.json()["checks"]  # pnl keeps no ledger of its own
    failing = httpx.get(f"{bad.url}/health", timeout=5)
    assert failing.status_code == 503
    entry = failing.json()["checks"]["lake:writable"][0]
    assert entry["status"] == "fail" and "not-a-dir" in entry["output"]


def test_unknown_account_is_empty_not_an_error(pnls: tuple[Proc, Proc, Path]) -> None:
    r = httpx.get(f"{pnls[0].url}/pnl", params={"account": "nobody-" + uuid.uuid4().hex})
    assert r.status_code == 200 and r.json()["symbols"] == [] and r.json()["total"] == 0
