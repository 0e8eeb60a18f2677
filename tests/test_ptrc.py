"""ptrc killed mid-flow (SIGKILL, fills half applied) and started again: every fill is
applied exactly once, duplicates (the same fill id under another message id) included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from services.contract import now_ms
from services.kit.positions import Position
from tests.bus_helpers import get_json_until, publish, restart_nats
from tests.helpers import Proc, start_service, wait_until

pytestmark = pytest.mark.process

N = 800
ACCOUNT, SYMBOL = "ptrc-restart", "PTRCX"


def fill(i: int, msg_id: str) -> tuple[str, dict[str, Any]]:
    side = "sell" if i % 3 == 2 else "buy"
    return f"exec.fill.{SYMBOL}", {
        "id": msg_id, "fill_id": f"ord-{i}-1", "order_id": f"ord-{i}", "client_order_id": None,
        "account": ACCOUNT, "symbol": SYMBOL, "side": side, "quantity": 1.0, "price": 100.0 + i % 7,
        "cumulative_quantity": 1.0, "leaves_quantity": 0.0, "final": True, "order_ts": now_ms(),
        "ts": now_ms()}


def count(proc: Proc) -> int:
    r = httpx.get(f"{proc.url}/trades", params={"account": ACCOUNT, "limit": 1}, timeout=2)
    return int(r.json()["count"]) if r.status_code == 200 else -1


def test_restart_mid_flow_applies_each_fill_once(fresh_valkey: Proc, fresh_nats: Proc,
                                                 tmp_path: Path) -> None:
    # Every fill twice, under two message ids: JetStream keeps both, ptrc must drop one.
    events = [e for i in range(N) for e in (fill(i, f"m-{i}"), fill(i, f"dup-{i}"))]
    publish(fresh_nats.url, events)
    env = {"TRADE_OPS_VALKEY_URL": fresh_valkey.url, "TRADE_OPS_NATS_URL": fresh_nats.url,
           "TRADE_OPS_CONSUMER_BATCH": "1", "TRADE_OPS_LOG_LEVEL": "warning"}  # slow: a kill lands mid-flow
    first = start_service("ptrc", tmp_path, env)
    try:
        assert wait_until(lambda: count(first) > 0, 20)
        first.popen.kill()  # mid-flow, no goodbye: what it read past its cursor is read again
        first.popen.wait(5)
    finally:
        first.stop()
    applied_before = count_from_valkey(fresh_valkey)
    assert 0 < applied_before < N, "the kill should land mid-flow"
    second = start_service("ptrc", tmp_path, env)
    try:
        trades = get_json_until(f"{second.url}/trades", lambda d: d["count"] >= N, 30,
                                {"account": ACCOUNT, "limit": 100_000})
        positions = httpx.get(f"{second.url}/positions", params={"account": ACCOUNT}).json()
        bad_limit = httpx.get(f"{second.url}/trades", params={"account": ACCOUNT, "limit": 0})
    finally:
        second.stop()
    expected = Position()
    for i in range(N):
        _, e = fill(i, "")
        expected.apply(e["side"], 1.0, e["price"])
    assert trades["count"] == N
    assert sorted(t["fill_id"] for t in trades["trades"]) == sorted(f"ord-{i}-1" for i in range(N))
    [p] = positions["positions"]
    assert p["quantity"] == pytest.approx(expected.quantity)
    assert p["avg_price"] == pytest.approx(expected.avg_price, abs=1e-6)
    assert p["realized"] == pytest.approx(expected.realized, abs=1e-6)
    assert bad_limit.status_code == 422 and "limit" in bad_limit.json()["detail"]


def count_from_valkey(valkey: Proc) -> int:
    import redis

    client = redis.Redis.from_url(valkey.url)
    try:
        return int(client.llen(f"ptrc:trades:{ACCOUNT}"))
    finally:
        client.close()


@pytest.mark.parametrize("store", ["kept", "wiped"])
def test_fills_across_a_nats_restart_are_each_applied_once(fresh_valkey: Proc, fresh_nats: Proc,
                                                            tmp_path: Path, store: str) -> None:
    # "wiped": NATS comes back with an empty store, so EXEC's sequences start at 1 again.
    env = {"TRADE_OPS_VALKEY_URL": fresh_valkey.url, "TRADE_OPS_NATS_URL": fresh_nats.url,
           "TRADE_OPS_LOG_LEVEL": "warning"}
    publish(fresh_nats.url, [fill(i, f"m-{i}") for i in range(10)])
    ptrc = start_service("ptrc", tmp_path, env)
    again: Proc | None = None
    try:
        assert wait_until(lambda: count(ptrc) == 10, 20)
        fresh_nats.stop()
        workdir = tmp_path / store
        workdir.mkdir()
        again = restart_nats(fresh_nats, tmp_path if store == "kept" else workdir)
        publish(fresh_nats.url, [fill(i, f"m-{i}") for i in range(10, 20)])
        assert wait_until(lambda: count(ptrc) == 20, 30), count(ptrc)
        publish(fresh_nats.url, [fill(i, f"again-{i}") for i in range(20)])  # each fill once more
        publish(fresh_nats.url, [fill(20, "m-20")])
        assert wait_until(lambda: count(ptrc) == 21, 20), count(ptrc)
    finally:
        ptrc.stop()
        if again is not None:
            again.stop()
