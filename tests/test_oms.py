"""oms as a real process with a real risk: entry, idempotency, state from fills, failure modes."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest

from services import contract as events
from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc, json_object, wait_until
from tests.orderpath import fill_event, start, tick_event
from trade_ops import infra

pytestmark = pytest.mark.process

ACCOUNT = f"oms-{uuid.uuid4().hex[:6]}"
MINE = {"account": ACCOUNT}


@dataclass
class Stack:
    oms: Proc
    client: httpx.Client  # the oms's, as this test's account
    risk: Proc
    env: dict[str, str]
    workdir: Path


@pytest.fixture(scope="module")
def stack(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    publish(nats_server.url, [tick_event("BTCUSDT", 50_000, 50_010)])
    workdir = tmp_path_factory.mktemp("oms")
    env = infra_env(valkey_server, nats_server, log_level="warning")
    risk, _ = start("risk", workdir, env)
    oms, client = start("oms", workdir, {**env, "TRADE_OPS_URL_RISK": risk.url})
    client.headers["X-Account"] = ACCOUNT  # orders are scoped by account: this test's own
    yield Stack(oms, client, risk, env, workdir)
    oms.stop()
    risk.stop()


def order(**fields: object) -> dict[str, object]:
    return {"account": ACCOUNT, "symbol": "BTCUSDT", "side": "buy", "quantity": 0.5,
            "order_type": "LIMIT", "price": 49_000, **fields}


def test_market_order_is_accepted_persisted_and_published(stack: Stack, nats_server: Proc) -> None:
    client = stack.client

    async def post_and_watch() -> tuple[httpx.Response, dict[str, Any]]:
        nc = await nats.connect(nats_server.url)
        sub = await nc.subscribe(events.ORDERS_NEW)
        await nc.flush()  # the server has the subscription before the order is sent
        resp = await asyncio.to_thread(client.post, "/orders",
                                       json=order(order_type="MARKET", price=None, quantity=0.01))
        oid = resp.json().get("order_id")
        async for msg in sub.messages:
            event = json_object(msg.data)
            if event["id"] == oid:
                await nc.close()
                return resp, event
        raise AssertionError("no orders.new event")

    resp, event = asyncio.run(asyncio.wait_for(post_and_watch(), 10))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "ACCEPTED" and body["risk_level"] == "LOW" and body["warnings"] == []
    assert body["latency_ms"] > 0 and body["result"] == "accepted"
    assert event["order"]["order_id"] == body["order_id"]
    stored = client.get(f"/orders/{body['order_id']}").json()
    assert stored["status"] == "ACCEPTED" and stored["price"] is None


def test_same_client_order_id_replays_and_another_body_is_409(stack: Stack) -> None:
    client = stack.client
    coid = uuid.uuid4().hex
    first = client.post("/orders", json=order(client_order_id=coid))
    assert first.status_code == 201
    again = client.post("/orders", content=orjson.dumps(dict(reversed(order(client_order_id=coid).items()))),
                        headers={"content-type": "application/json"})
    assert again.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"]
    assert (first.json()["result"], again.json()["result"]) == ("accepted", "replayed")
    other = client.post("/orders", json=order(client_order_id=coid, quantity=0.6))
    assert other.status_code == 409 and other.json()["result"] == "conflict"
    assert first.json()["order_id"] in other.json()["detail"]
    listed = client.get("/orders", params={"account": ACCOUNT}).json()["orders"]
    assert sum(o["client_order_id"] == coid for o in listed) == 1


def test_risk_rejection_is_422_and_recorded(stack: Stack) -> None:
    client = stack.client
    resp = client.post("/orders", json=order(quantity=6))
    assert resp.status_code == 422 and resp.json()["result"] == "rejected"
    assert "max order quantity" in resp.json()["detail"]
    oid = resp.json()["order"]["order_id"]
    stored = client.get(f"/orders/{oid}").json()
    assert stored["status"] == "REJECTED" and "max order quantity" in stored["reason"]
    rejected = client.get("/orders", params={"account": ACCOUNT, "status": "REJECTED"}).json()
    assert [o["order_id"] for o in rejected["orders"]] == [oid]


def test_order_state_follows_fills_once_each(stack: Stack, nats_server: Proc) -> None:
    client = stack.client
    oid = client.post("/orders", json=order(quantity=2)).json()["order_id"]
    first = fill_event(ACCOUNT, "BTCUSDT", "buy", 0.5, 49_000, order_id=oid, cumulative=0.5, order_quantity=2)
    publish(nats_server.url, [first, (*first, "redelivered")])
    url = f"{stack.oms.url}/orders/{oid}"
    partial = get_json_until(url, lambda o: o["status"] == "PARTIALLY_FILLED", params=MINE)
    assert partial["filled_quantity"] == 0.5
    publish(nats_server.url, [fill_event(ACCOUNT, "BTCUSDT", "buy", 1.5, 48_000, order_id=oid,
                                         cumulative=2, order_quantity=2)])
    filled = get_json_until(url, lambda o: o["status"] == "FILLED", params=MINE)
    assert filled["filled_quantity"] == 2
    assert filled["avg_fill_price"] == pytest.approx((0.5 * 49_000 + 1.5 * 48_000) / 2)
    assert client.delete(f"/orders/{oid}").status_code == 409  # nothing left to cancel


def test_cancel_publishes_and_state_follows_exec_cancelled(stack: Stack, nats_server: Proc) -> None:
    client = stack.client
    oid = client.post("/orders", json=order()).json()["order_id"]

    async def cancel_and_watch() -> dict[str, Any]:
        nc = await nats.connect(nats_server.url)
        sub = await nc.subscribe(events.ORDERS_CANCEL)
        await nc.flush()
        resp = await asyncio.to_thread(client.delete, f"/orders/{oid}")
        assert resp.status_code == 202, resp.text
        async for msg in sub.messages:
            event = json_object(msg.data)
            if event["order_id"] == oid:
                await nc.close()
                return event
        raise AssertionError("no orders.cancel event")

    event = asyncio.run(asyncio.wait_for(cancel_and_watch(), 10))
    assert event["id"] == f"cancel-{oid}" and event["account"] == ACCOUNT
    publish(nats_server.url, [(events.EXEC_CANCELLED, {
        "id": f"cancelled-{oid}", "ts": events.now_ms(), "order_id": oid, "account": ACCOUNT,
        "symbol": "BTCUSDT", "cancelled_quantity": 0.5, "reason": "user"})])
    get_json_until(f"{stack.oms.url}/orders/{oid}", lambda o: o["status"] == "CANCELLED", params=MINE)
    assert client.delete(f"/orders/{oid}").status_code == 409
    assert client.delete("/orders/does-not-exist").status_code == 404


def test_side_and_types_in_any_case_answer_in_the_contract_case(stack: Stack) -> None:
    # "side": "BUY" was refused while order_type had to be upper case: now any case, one answer.
    client = stack.client
    limit = client.post("/orders", json=order(side="BUY", order_type="limit", time_in_force="gtc"))
    market = client.post("/orders", json=order(side="Sell", order_type="Market", price=None, quantity=0.01))
    assert limit.status_code == 201 and market.status_code == 201, (limit.text, market.text)
    assert (limit.json()["side"], limit.json()["order_type"], limit.json()["time_in_force"]) == (
        "buy", "LIMIT", "GTC")
    assert (market.json()["side"], market.json()["order_type"]) == ("sell", "MARKET")
    # the same order spelled in another case is the same order (idempotency)
    coid = uuid.uuid4().hex
    first = client.post("/orders", json=order(client_order_id=coid, side="buy"))
    again = client.post("/orders", json=order(client_order_id=coid, side="BUY"))
    assert first.status_code == again.status_code == 201
    assert again.json()["order_id"] == first.json()["order_id"]


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1'),  # malformed
    ("POST", "/orders", b'{"side": "buy", "quantity": 1, "price": 5}'),  # missing symbol
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": "x", "price": 5}'),
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": -1, "price": 5}'),
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1e20, "price": 5}'),
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "price": 0}'),
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1}'),  # LIMIT, no price
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "order_type": "STOP"}'),
    ("POST", "/orders", b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "price": 5, '
                        b'"time_in_force": "FOK"}'),
    ("POST", "/orders", b'{"symbol": "NOPEUSDT", "side": "buy", "quantity": 1, "price": 5}'),  # risk
    ("POST", "/orders", b'"order"'),
    ("POST", "/orders", b''),
    ("GET", "/orders?status=LOST", b''),
    ("GET", "/orders?limit=0", b''),
    ("GET", "/orders?limit=lots", b''),
    ("GET", "/orders/" + "x" * 100, b''),
    ("GET", "/orders/no-such-order", b''),
    ("DELETE", "/orders/bad$id", b''),
])
def test_bad_input_is_4xx_with_a_reason(stack: Stack, method: str, path: str, body: bytes) -> None:
    resp = stack.client.request(method, path, content=body,
                                   headers={"content-type": "application/json"} if body else {})
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["detail"]


def test_http_transport_to_risk(stack: Stack) -> None:
    env = {**stack.env, "TRADE_OPS_URL_RISK": stack.risk.url, "TRADE_OPS_RISK_TRANSPORT": "http"}
    proc, client = start("oms", stack.workdir, env)
    try:
        assert client.post("/orders", json=order()).status_code == 201
        assert client.post("/orders", json=order(quantity=6)).status_code == 422
    finally:
        proc.stop()


def test_risk_down_fails_closed_or_open_by_setting(valkey_server: Proc, fresh_nats: Proc,
                                                    tmp_path: Path) -> None:
    env = infra_env(valkey_server, fresh_nats, log_level="warning", risk_timeout_s="0.2")
    closed, closed_client = start("oms", tmp_path, env)
    opened, open_client = start("oms", tmp_path, {**env, "TRADE_OPS_RISK_FAIL_OPEN": "true"})
    try:
        resp = closed_client.post("/orders", json=order(client_order_id="c1"))
        assert resp.status_code == 503 and "risk" in resp.json()["detail"]
        assert resp.json()["result"] == "unavailable"
        health = closed_client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["risk:responseTime"][0]["status"] == "fail"

        resp = open_client.post("/orders", json=order())
        assert resp.status_code == 201 and resp.json()["risk_level"] == "UNCHECKED"
        assert "fail-open" in resp.json()["warnings"][0]
        health = open_client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "warn"
    finally:
        closed.stop()
        opened.stop()


def test_valkey_down_is_503_and_health_recovers(fresh_valkey: Proc, nats_server: Proc,
                                                tmp_path: Path) -> None:
    env = infra_env(fresh_valkey, nats_server, log_level="warning")
    risk, _ = start("risk", tmp_path, env)
    oms, client = start("oms", tmp_path, env)
    restarted = None
    try:
        assert client.get("/health").json()["status"] == "pass"
        fresh_valkey.stop()
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["valkey:responseTime"][0]["status"] == "fail"
        assert client.post("/orders", json=order()).status_code == 503
        assert client.get("/orders", params={"account": ACCOUNT}).status_code == 503

        port = fresh_valkey.port
        restarted = subprocess.Popen(infra.valkey_command(port, tmp_path / f"valkey-{port}"),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: infra.valkey_ready("127.0.0.1", port), 10)
        assert wait_until(lambda: client.get("/health").status_code == 200, 10), client.get("/health").text
        assert client.get("/health").json()["status"] == "pass"
        assert client.post("/orders", json=order()).status_code == 201
    finally:
        oms.stop()
        risk.stop()
        if restarted is not None:
            restarted.terminate()
            restarted.wait(5)


def test_orders_fast_path_keeps_metrics_and_limits_the_body(stack: Stack) -> None:
    # POST /orders bypasses the FastAPI middleware stack (services/oms/fastpath.py).
    client = stack.client
    too_big = client.post("/orders", content=b"x" * (70 * 1024),
                          headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and "body larger" in too_big.json()["detail"]
    metrics = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/orders",status="413"}' in metrics
    assert 'http_request_duration_seconds_count{method="POST",route="/orders"}' in metrics
