"""A service stops on SIGTERM within the time `trade-ops down` gives it before SIGKILL,
whatever its clients do, and a request in flight still gets its answer.

Under Docker, `down` (grace 3 s) SIGKILLs a service 2 s after its SIGTERM (the last second
is valkey's and nats's): a service still draining then loses its lifespan's exit (what
it published flushed to NATS, its connections closed). A client that had sent half a
request and stalled held a service for its whole 2 s graceful shutdown, past the kill.
"""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.bus_helpers import infra_env
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

KILL_AFTER_S = 2.0  # trade_ops/runtime/docker.py: down's grace (3 s) less infra's second


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _head(path: str, body: bytes, port: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()


def test_sigterm_completes_the_request_in_flight_and_exits_before_the_kill(
        valkey_server: Proc, nats_server: Proc, tmp_path: Path) -> None:
    env = infra_env(valkey_server, nats_server, log_level="info")
    risk = start_service("risk", tmp_path, env)
    socks: list[socket.socket] = []
    try:
        port = risk.port
        # 1. a kept-alive connection, idle after one answered request
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        kept.request("GET", "/livez")
        livez = kept.getresponse()
        assert livez.status == 200 and livez.read() and not livez.will_close
        assert kept.sock is not None
        idle = kept.sock
        socks.append(idle)
        # 2. a request in flight: its head and half its body sent
        body = orjson.dumps({"account": "stop-test", "symbol": "BTCUSDT", "side": "buy",
                             "quantity": 0.001, "price": 50_000.0})
        in_flight = _connect(port)
        socks.append(in_flight)
        in_flight.sendall(_head("/check", body, port) + body[:10])
        # 3. a client that sends half a request and then nothing, ever
        stalled = _connect(port)
        socks.append(stalled)
        stalled.sendall(_head("/check", body, port) + body[:10])

        risk.popen.terminate()
        in_flight.sendall(body[10:])  # the rest arrives after the SIGTERM: it is still answered
        answer = _read_response(in_flight)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]  # and then the connection closed
        assert b'"approved"' in answer, answer[-300:]
        try:
            code = risk.popen.wait(KILL_AFTER_S)
        except subprocess.TimeoutExpired:
            code = None
        log = risk.log_text()
        # uvicorn ends by raising the signal it caught again: exit status -SIGTERM (143 in Docker)
        assert code == -signal.SIGTERM, f"up {KILL_AFTER_S} s after SIGTERM:\n{log[-2000:]}"
        assert "Application shutdown complete" in log, log[-2000:]  # the lifespan's exit ran
        assert idle.recv(1) == b""  # the idle kept-alive connection was closed, not waited for
    finally:
        for sock in socks:
            sock.close()
        risk.stop()
