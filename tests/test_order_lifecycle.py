"""The whole order path on real processes: oms -> risk -> exeq -> live-gateway -> fills ->
oms, ptrc, pnl. Quotes are hand-published ticks, so every figure is computed by hand:

    tick 1: bid 50,000  ask 50,010
    MARKET buy 2         -> FILLED 2 @ 50,010 (the ask)
    LIMIT sell 1 @ 50,100 rests (bid 50,000 is below it)
    tick 2: bid 50,100  ask 50,110 -> the sell fills 1 @ 50,100 (the bid)
    position 1 @ 50,010; realized (50,100 - 50,010) * 1 = 90.00;
    unrealized at the mid 50,105: (50,105 - 50,010) * 1 = 95.00
    LIMIT buy 1 @ 40,000 rests, DELETE -> CANCELLED
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc
from tests.orderpath import start, tick_event

pytestmark = pytest.mark.process

ACCOUNT = f"life-{uuid.uuid4().hex[:6]}"
SERVICES = ("risk", "oms", "exeq", "live-gateway", "ptrc", "pnl")


@dataclass
class Stack:
    services: dict[str, tuple[Proc, httpx.Client]]  # name -> (process, client)
    workdir: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def stack(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    publish(nats_server.url, [tick_event("BTCUSDT", 50_000, 50_010, size=10)])
    workdir = tmp_path_factory.mktemp("lifecycle")
    env = infra_env(valkey_server, nats_server, log_level="warning",
                    lake_uri=str(workdir / "lake"), max_order_age_s="1")
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        started = dict(zip(SERVICES, pool.map(lambda name: start(name, workdir, env), SERVICES),
                           strict=True))
    yield Stack(started, workdir, env)
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        list(pool.map(lambda proc: proc.stop(), [p for p, _ in started.values()]))


def order_status(stack: Stack, order_id: str, status: str) -> dict[str, Any]:
    order: dict[str, Any] = get_json_until(f"{stack.services['oms'][0].url}/orders/{order_id}",
                                           lambda o: o["status"] == status, params={"account": ACCOUNT})
    return order


def test_market_and_limit_fill_cancel_and_positions_and_pnl_to_the_cent(
        stack: Stack, nats_server: Proc) -> None:
    oms = stack.services["oms"][1]
    oms.headers["X-Account"] = ACCOUNT  # orders are scoped by account
    base = {"account": ACCOUNT, "symbol": "BTCUSDT"}
    market = oms.post("/orders", json={**base, "side": "buy", "quantity": 2, "order_type": "MARKET"})
    assert market.status_code == 201, market.text
    filled = order_status(stack, market.json()["order_id"], "FILLED")
    assert (filled["filled_quantity"], filled["avg_fill_price"]) == (2, 50_010)

    limit = oms.post("/orders", json={**base, "side": "sell", "quantity": 1, "price": 50_100})
    assert limit.status_code == 201, limit.text
    assert oms.get(f"/orders/{limit.json()['order_id']}").json()["status"] == "ACCEPTED"
    publish(nats_server.url, [tick_event("BTCUSDT", 50_100, 50_110, size=10)])
    sold = order_status(stack, limit.json()["order_id"], "FILLED")
    assert sold["avg_fill_price"] == 50_100

    resting = oms.post("/orders", json={**base, "side": "buy", "quantity": 1, "price": 40_000})
    assert resting.status_code == 201
    assert oms.delete(f"/orders/{resting.json()['order_id']}").status_code == 202
    cancelled = order_status(stack, resting.json()["order_id"], "CANCELLED")
    assert cancelled["filled_quantity"] == 0

    positions = get_json_until(f"{stack.services['ptrc'][0].url}/positions", params={"account": ACCOUNT},
                               predicate=lambda d: d["positions"] and d["positions"][0]["quantity"] == 1)
    assert positions["positions"][0]["avg_price"] == 50_010
    trades = stack.services["ptrc"][1].get("/trades", params={"account": ACCOUNT}).json()
    assert trades["count"] == 2

    pnl = get_json_until(f"{stack.services['pnl'][0].url}/pnl", params={"account": ACCOUNT},
                         predicate=lambda d: d["realized"] == 90 and d["unrealized"] == 95)
    assert round(pnl["total"], 2) == 185.00
    risk_positions = get_json_until(f"{stack.services['risk'][0].url}/positions", params={"account": ACCOUNT},
                                    predicate=lambda d: d["positions"] and d["positions"][0]["quantity"] == 1)
    assert risk_positions["positions"][0]["avg_price"] == 50_010


def test_a_market_order_routed_too_late_is_cancelled_stale_and_the_oms_shows_why(stack: Stack) -> None:
    """MARKET IOC orders filled 30 s after their 201 once a crash forced their redelivery."""
    oms = stack.services["oms"][1]
    oms.headers["X-Account"] = ACCOUNT
    stack.services["exeq"][0].stop()  # the router is down: the accepted order waits in its stream
    late = oms.post("/orders", json={"account": ACCOUNT, "symbol": "BTCUSDT", "side": "buy", "quantity": 1,
                                     "order_type": "MARKET", "time_in_force": "IOC"})
    assert late.status_code == 201, late.text
    time.sleep(1.5)  # older than the venue's max_order_age_s (1 s here)
    stack.services["exeq"] = start("exeq", stack.workdir, stack.env)
    shown = order_status(stack, late.json()["order_id"], "CANCELLED")
    assert shown["filled_quantity"] == 0 and shown["reason"].startswith("stale:"), shown
