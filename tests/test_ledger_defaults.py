"""ptrc and pnl default `account` as the OMS does (issue 16, item 8): `/positions`, `/trades`
and `/pnl` without `?account=` answer for the OMS's default account."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from services.contract import now_ms
from services.kit.ledger import DEFAULT_ACCOUNT
from services.oms.models import OrderRequest
from tests.bus_helpers import get_json_until, publish
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

SYMBOL = "D" + uuid.uuid4().hex[:6].upper()


@pytest.fixture(scope="module")
def ledgers(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, Proc]]:
    workdir: Path = tmp_path_factory.mktemp("ledgers")
    env = {"TRADE_OPS_VALKEY_URL": valkey_server.url, "TRADE_OPS_NATS_URL": nats_server.url,
           "TRADE_OPS_LAKE_URI": str(workdir / "lake"), "TRADE_OPS_LOG_LEVEL": "warning"}
    with ThreadPoolExecutor(2) as pool:
        ptrc, pnl = pool.map(lambda name: start_service(name, workdir, env), ["ptrc", "pnl"])
    yield {"ptrc": ptrc, "pnl": pnl}
    ptrc.stop()
    pnl.stop()


def test_the_oms_default_is_the_ledgers_default() -> None:
    assert OrderRequest(symbol="BTCUSDT", side="buy", quantity=1, price=1).account == DEFAULT_ACCOUNT


def test_no_account_means_the_default_account(ledgers: dict[str, Proc], nats_server: Proc) -> None:
    fid = f"default-{uuid.uuid4().hex}"
    publish(nats_server.url, [(f"exec.fill.{SYMBOL}", {
        "id": fid, "fill_id": fid, "order_id": fid, "account": DEFAULT_ACCOUNT, "symbol": SYMBOL,
        "side": "buy", "quantity": 2.0, "price": 10.0, "ts": now_ms()})])
    ptrc, pnl = ledgers["ptrc"].url, ledgers["pnl"].url
    held = get_json_until(f"{ptrc}/positions",
                          lambda doc: any(p["symbol"] == SYMBOL for p in doc["positions"]))
    assert held["account"] == DEFAULT_ACCOUNT  # was 422: "account" required
    assert httpx.get(f"{ptrc}/positions", params={"account": DEFAULT_ACCOUNT}).json() == held
    trades = httpx.get(f"{ptrc}/trades", timeout=5).json()
    assert trades["account"] == DEFAULT_ACCOUNT and trades["count"] >= 1
    doc = get_json_until(f"{pnl}/pnl", lambda d: any(s["symbol"] == SYMBOL for s in d["symbols"]))
    assert doc["account"] == DEFAULT_ACCOUNT
    for url in (f"{ptrc}/positions", f"{pnl}/pnl"):  # an empty account is still refused, with a reason
        bad = httpx.get(url, params={"account": ""}, timeout=5)
        assert bad.status_code == 422 and bad.json()["detail"]
