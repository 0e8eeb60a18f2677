"""Strict input and bounded resources on every service (issue 13, point 6), on real
processes: risk and oms on real Valkey/NATS, with small limits so each bound is reached.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.bus_helpers import infra_env, publish
from tests.helpers import Proc
from tests.orderpath import start, tick_event

pytestmark = pytest.mark.process

ACCOUNT = f"strict-{uuid.uuid4().hex[:6]}"
BOUNDS = {"max_body_bytes": "4096", "request_timeout_s": "1", "keep_alive_s": "1", "max_connections": "6"}


@pytest.fixture(scope="module")
def stack(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    publish(nats_server.url, [tick_event("BTCUSDT", 50_000, 50_010)])
    workdir = tmp_path_factory.mktemp("strict")
    env = infra_env(valkey_server, nats_server, log_level="warning", **BOUNDS)
    risk, risk_client = start("risk", workdir, env)
    oms, client = start("oms", workdir, {**env, "TRADE_OPS_URL_RISK": risk.url})
    yield {"oms": oms, "client": client, "risk": risk, "risk_client": risk_client}
    oms.stop()
    risk.stop()


def order(**fields: object) -> dict[str, Any]:
    return {"account": ACCOUNT, "symbol": "BTCUSDT", "side": "buy", "quantity": 0.01,
            "order_type": "MARKET", **fields}


@pytest.mark.parametrize(("fields", "reason"), [
    ({"quantity": 1e-13}, "below the minimum"),  # a MARKET order that could never fill
    ({"quantity": 1e-320}, "below the minimum"),
    ({"quantity": 0.00015}, "lot size"),
])
def test_quantities_below_the_minimum_or_off_the_lot_size_are_rejected(
        stack: dict[str, Any], fields: dict[str, Any], reason: str) -> None:
    resp = stack["client"].post("/orders", json=order(**fields))
    assert resp.status_code == 422 and reason in resp.json()["detail"], resp.text
    assert resp.json()["order"]["status"] == "REJECTED"


@pytest.mark.parametrize("fields", [
    {"quantity": True},  # was taken as 1.0
    {"quantity": "0.1"},  # was taken as 0.1
    {"order_type": "LIMIT", "price": "50000"},
    {"order_type": "LIMIT", "price": False},
    {"client_order_id": "abc\n"},  # was stored as "abc"
    {"client_order_id": " abc"},
])
def test_numbers_must_be_numbers_and_ids_exact(stack: dict[str, Any], fields: dict[str, Any]) -> None:
    resp = stack["client"].post("/orders", json=order(**fields))
    assert resp.status_code == 422 and resp.json()["detail"], resp.text


def test_risk_check_takes_numbers_only(stack: dict[str, Any]) -> None:
    resp = stack["risk_client"].post("/check", json={"symbol": "BTCUSDT", "side": "buy", "quantity": True})
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(("service", "path"), [("oms", "/orders"), ("risk", "/check"),
                                               ("risk", "/kill-switch")])
def test_a_body_that_is_not_json_is_415(stack: dict[str, Any], service: str, path: str) -> None:
    body = b'{"symbol": "BTCUSDT", "side": "buy", "quantity": 1, "order_type": "MARKET"}'
    resp = httpx.post(stack[service].url + path, content=body, headers={"content-type": "text/plain"})
    assert resp.status_code == 415 and "JSON" in resp.json()["detail"], resp.text


@pytest.mark.parametrize(("service", "path"), [("risk", "/check"), ("risk", "/kill-switch"),
                                               ("oms", "/orders"), ("oms", "/orders/x")])
def test_every_service_limits_the_body(stack: dict[str, Any], service: str, path: str) -> None:
    big = b'{"pad": "' + b"x" * 200_000 + b'"}'
    declared = httpx.post(stack[service].url + path, content=big,
                          headers={"content-type": "application/json"})
    assert declared.status_code == 413 and "larger" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no content-length: counted as it arrives
        for _ in range(50):
            yield b"x" * 4096

    streamed = httpx.post(stack[service].url + path, content=chunks(),
                          headers={"content-type": "application/json"})
    assert streamed.status_code == 413


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed the connection, or None if it kept it open."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while True:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
    except TimeoutError:
        return None
    except ConnectionResetError:
        return time.monotonic() - started


def test_slow_headers_and_idle_connections_are_cut_off(stack: dict[str, Any]) -> None:
    port = stack["risk"].port
    with socket.create_connection(("127.0.0.1", port)) as slow:
        slow.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
        assert (_closed_within(slow, 4) or 99) < 3  # request_timeout_s=1 (was held 20 s)
    with socket.create_connection(("127.0.0.1", port)) as idle:
        assert (_closed_within(idle, 4) or 99) < 3  # never sends anything (was kept forever)
    with socket.create_connection(("127.0.0.1", port)) as kept:
        kept.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        assert (_closed_within(kept, 4) or 99) < 3  # keep_alive_s=1


def test_idle_connections_at_the_connection_limit_never_make_a_request_503(stack: dict[str, Any]) -> None:
    """Six held connections made every request 503 (uvicorn counts connections); now the
    oldest idle one is closed to let a request in."""
    held = [socket.create_connection(("127.0.0.1", stack["risk"].port)) for _ in range(6)]
    try:
        assert httpx.get(stack["risk"].url + "/livez").status_code == 200
        assert _closed_within(held[0], 2) is not None  # the oldest made room
    finally:
        for s in held:
            s.close()
