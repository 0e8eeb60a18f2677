"""risk as a real process: POST /check and NATS `risk.check`, kill switch, positions from
fills (applied by ptrc, which publishes each position it changes)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest

from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc, json_object
from tests.orderpath import fill_event, start, tick_event

pytestmark = pytest.mark.process

ACCOUNT = f"risk-{uuid.uuid4().hex[:6]}"
# The risk service, a client of it and the environment it runs with (workdir included).
Risk = tuple[Proc, httpx.Client, dict[str, str]]


@pytest.fixture(scope="module")
def risk(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Risk]:
    # Quotes and a fill already on the streams before risk starts: it must pick them up.
    publish(nats_server.url, [tick_event("BTCUSDT", 50_000, 50_010), tick_event("XRPUSDT", 0.5, 0.51),
                              fill_event(ACCOUNT, "BTCUSDT", "buy", 4, 50_000, fill_id=f"{ACCOUNT}-f0")])
    env = infra_env(valkey_server, nats_server, log_level="warning")
    workdir = tmp_path_factory.mktemp("risk")
    ptrc, _ = start("ptrc", workdir, env)
    get_json_until(f"{ptrc.url}/positions", params={"account": ACCOUNT},
                   predicate=lambda d: bool(d["positions"]))
    proc, client = start("risk", workdir, env)
    try:
        yield proc, client, {"workdir": str(workdir), **env}
        client.post("/kill-switch", json={"reason": "x"})  # leave no halt in the shared valkey
        client.delete("/kill-switch")
    finally:
        proc.stop()
        ptrc.stop()


def check(client: httpx.Client, **body: object) -> dict[str, Any]:
    resp = client.post("/check", json={"account": ACCOUNT, **body})
    assert resp.status_code == 200, resp.text
    return json_object(resp.content)


def nats_check(url: str, body: bytes) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        nc = await nats.connect(url)
        try:
            msg = await nc.request("risk.check", body, timeout=2)
            return json_object(msg.data)
        finally:
            await nc.close()

    return asyncio.run(go())


def test_limits_endpoint(risk: Risk) -> None:
    limits = risk[1].get("/limits").json()
    assert limits["per_symbol"]["BTCUSDT"]["max_position"] == 10
    assert limits["per_symbol"]["ETHUSDT"]["max_position"] == 100
    assert limits["DEFAULT"]["max_position"] > 0


def test_market_order_priced_at_the_quote_and_levels(risk: Risk) -> None:
    client = risk[1]
    assert check(client, symbol="SOLUSDT", side="buy", quantity=1, price=150)["risk_level"] == "LOW"
    medium = check(client, symbol="BTCUSDT", side="sell", quantity=4.5)  # priced at the bid
    assert medium["approved"] and medium["risk_level"] == "MEDIUM" and medium["warnings"]


@pytest.mark.parametrize(("body", "reason"), [
    ({"symbol": "NOPEUSDT", "side": "buy", "quantity": 1, "price": 1}, "unknown symbol"),
    ({"symbol": "BTCUSDT", "side": "buy", "quantity": 0}, "quantity must be > 0"),
    ({"symbol": "BTCUSDT", "side": "buy", "quantity": -2}, "quantity must be > 0"),
    ({"symbol": "BTCUSDT", "side": "buy", "quantity": 6}, "max order quantity"),
    ({"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "price": 5_000_000}, "max order notional"),
    # DEFAULT applies to a symbol known only from the tick stream.
    ({"symbol": "XRPUSDT", "side": "buy", "quantity": 1001}, "max order quantity 1000"),
])
def test_each_rule_rejects_over_http_and_nats(risk: Risk, nats_server: Proc, body: dict[str, object],
                                              reason: str) -> None:
    answer = check(risk[1], **body)
    assert not answer["approved"] and answer["risk_level"] == "CRITICAL"
    assert reason in answer["reason"]
    # The same function answers over NATS.
    assert nats_check(nats_server.url, orjson.dumps({"account": ACCOUNT, **body})) == answer


def test_position_limit_uses_fills_once_each(risk: Risk, nats_server: Proc) -> None:
    client = risk[1]
    # 4 BTC from before start; +5 now, and the same fill again (redelivered under a new msg id).
    fill = fill_event(ACCOUNT, "BTCUSDT", "buy", 5, 50_000, fill_id=f"{ACCOUNT}-f1")
    publish(nats_server.url, [fill, (*fill, "another-msg-id")])
    get_json_until(f"{risk[0].url}/positions", params={"account": ACCOUNT},
                   predicate=lambda d: d["positions"] and d["positions"][0]["quantity"] == 9)
    rejected = check(client, symbol="BTCUSDT", side="buy", quantity=2)
    assert "max position" in rejected["reason"]
    assert check(client, symbol="BTCUSDT", side="sell", quantity=2)["approved"]  # reduces


def test_positions_rebuilt_on_restart(risk: Risk, valkey_server: Proc, nats_server: Proc) -> None:
    env = {k: v for k, v in risk[2].items() if k != "workdir"}
    before = risk[1].get("/positions", params={"account": ACCOUNT}).json()
    proc, client = start("risk", Path(risk[2]["workdir"]), env)
    try:
        assert client.get("/positions", params={"account": ACCOUNT}).json() == before
    finally:
        proc.stop()


def test_kill_switch_global_and_per_symbol(risk: Risk) -> None:
    client = risk[1]
    order = {"symbol": "BTCUSDT", "side": "buy", "quantity": 0.1, "price": 50_000}
    assert client.post("/kill-switch", json={"symbol": "btcusdt", "reason": "venue down"}).status_code == 200
    assert "kill switch is active for BTCUSDT: venue down" in check(client, **order)["reason"]
    assert check(client, **{**order, "symbol": "SOLUSDT", "price": 150})["approved"]
    assert client.delete("/kill-switch", params={"symbol": "BTCUSDT"}).json()["symbols"] == {}
    assert check(client, **order)["approved"]

    client.post("/kill-switch", json={"reason": "end of day"})
    assert client.get("/kill-switch").json()["global"] is True
    assert "(global)" in check(client, **{**order, "symbol": "SOLUSDT", "price": 150})["reason"]
    client.delete("/kill-switch")
    assert check(client, **order)["approved"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/check", b'{"symbol": "BTCUSDT", "side": "buy"'),  # malformed JSON
    ("POST", "/check", b'{"side": "buy", "quantity": 1}'),  # missing symbol
    ("POST", "/check", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": "one"}'),
    ("POST", "/check", b'{"symbol": "BTCUSDT", "side": "up", "quantity": 1}'),
    ("POST", "/check", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1e300}'),
    ("POST", "/check", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "price": -1}'),
    ("POST", "/check", b'[]'),
    ("POST", "/check", b''),
    ("POST", "/kill-switch", b'{"symbol": "NOPEUSDT"}'),
    ("POST", "/kill-switch", b'{"symbol": 5}'),
    ("POST", "/kill-switch", b'{"reason": ""}'),
    ("POST", "/kill-switch", b'not json'),
    ("DELETE", "/kill-switch?symbol=" + "X" * 40, b''),
    ("GET", "/positions?account=" + "a" * 100, b''),
])
def test_bad_input_is_4xx_with_a_reason(risk: Risk, method: str, path: str, body: bytes) -> None:
    resp = risk[1].request(method, path, content=body, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["detail"]


def test_bad_input_over_nats_is_a_rejection_with_a_reason(risk: Risk, nats_server: Proc) -> None:
    answer = nats_check(nats_server.url, b'{"symbol": 7}')
    assert answer["approved"] is False
    assert answer["reason"].startswith("invalid request")


def _order_new(account: str, order_id: str, order_type: str, price: float | None
               ) -> tuple[str, dict[str, Any]]:
    return "orders.new", {"id": order_id, "order": {
        "order_id": order_id, "account": account, "symbol": "BTCUSDT", "side": "buy", "quantity": 0.01,
        "order_type": order_type, "price": price, "time_in_force": "GTC" if price else "IOC"}}


def test_only_an_order_still_working_is_written_to_valkey(risk: Risk, valkey_server: Proc,
                                                          nats_server: Proc) -> None:
    """Every MARKET order was written to risk:working at its confirm and deleted at its fill
    25 ms later (an HSET and an HDEL an order): its orders.new is now read after its fill,
    and nothing is written. An order that rests is written, so a restarted risk counts it."""
    import redis

    account = f"{ACCOUNT}-w"
    market, resting = f"m-{uuid.uuid4().hex[:8]}", f"r-{uuid.uuid4().hex[:8]}"
    valkey = redis.Redis.from_url(valkey_server.url)
    valkey.config_set("notify-keyspace-events", "Kh")
    watch = valkey.pubsub()
    watch.subscribe("__keyspace@0__:risk:working")
    try:
        publish(nats_server.url, [
            _order_new(account, market, "MARKET", None), _order_new(account, resting, "LIMIT", 40_000.0),
            fill_event(account, "BTCUSDT", "buy", 0.01, 50_000, order_id=market, fill_id=f"{market}-1")])
        get_json_until(f"{risk[0].url}/working", params={"account": account},
                       predicate=lambda d: bool(d["working"]) and d["working"][0]["orders"] == 1)
        time.sleep(0.5)  # a save of either consumer would have happened by now
        seen = [m["data"] for m in iter(lambda: watch.get_message(timeout=0.2), None)
                if m["type"] == "message"]
        stored = (valkey.hexists("risk:working", market), valkey.hexists("risk:working", resting))
    finally:
        watch.close()
        valkey.config_set("notify-keyspace-events", "")
        valkey.close()
    assert stored == (False, True)
    assert seen == [b"hset"]  # the resting order's; nothing for the one that traded at once
