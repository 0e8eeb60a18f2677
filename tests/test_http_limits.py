"""The kit's HTTP limits (services/kit/server.py) with real sockets against a real OMS
(and its risk): slow-body, slow-header, idle and huge-header clients beside real orders.
Slow clients come from 127.0.0.2, real orders from 127.0.0.1 (the per-client bound)."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httptools
import httpx
import psutil
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.kit.server import UVICORN_TESTED, BoundedHttp, StartupFrozen, bounded
from services.kit.settings import KitSettings
from tests.apps.slow_clients import hold, open_one
from tests.bus_helpers import infra_env, publish
from tests.helpers import Proc, wait_until
from tests.orderpath import start, tick_event

pytestmark = pytest.mark.process

ACCOUNT = f"limits-{uuid.uuid4().hex[:6]}"
SLOW = 30  # slow clients of each kind
# max_requests = SLOW: were a request still sending its body counted (or an idle connection,
# as uvicorn's limit_concurrency does), the slow clients alone would fill it and real orders 503.
BOUNDS = {"request_timeout_s": "1", "max_requests": str(SLOW),
          "max_connections_per_client": str(3 * SLOW + 5), "max_header_bytes": "16384", "max_headers": "50"}


def test_canary_uvicorn_internals_are_the_ones_bounded_http_was_written_for() -> None:
    """BoundedHttp overrides these of uvicorn's httptools protocol: a new version must be checked."""
    assert uvicorn.__version__.startswith(UVICORN_TESTED[0]), uvicorn.__version__
    assert httptools.__version__.startswith(UVICORN_TESTED[1]), httptools.__version__
    for name in ("connection_made", "connection_lost", "data_received", "on_message_begin", "on_header",
                 "on_headers_complete", "_start_asgi_task", "on_body", "on_message_complete",
                 "on_response_complete", "send_400_response", "shutdown"):
        assert name in vars(HttpToolsProtocol) and name in vars(BoundedHttp), name
    assert "startup" in vars(uvicorn.Server) and "startup" in vars(StartupFrozen)


@pytest.fixture(scope="module")
def oms(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Proc]:
    publish(nats_server.url, [tick_event("BTCUSDT", 50_000, 50_010)])
    workdir = tmp_path_factory.mktemp("http-limits")
    env = infra_env(valkey_server, nats_server, log_level="warning", **BOUNDS)
    risk, _ = start("risk", workdir, env)
    proc, _ = start("oms", workdir, {**env, "TRADE_OPS_URL_RISK": risk.url})
    try:
        yield proc
    finally:
        proc.stop()
        risk.stop()


def _order(port: int) -> int:
    """One real order on a connection of its own (from 127.0.0.1): its status code."""
    body = (b'{"account":"%s","symbol":"BTCUSDT","side":"buy","quantity":0.01,"order_type":"LIMIT",'
            b'"price":40000,"time_in_force":"GTC"}' % ACCOUNT.encode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return int(sock.recv(65536).split(b" ", 2)[1])


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.setblocking(True)
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slow_and_idle_clients_never_make_a_real_order_503(oms: Proc) -> None:
    """999 connections that sent headers and never finished their bodies made every real
    order 503 for as long as they were held."""
    held = [open_one(oms.port, kind) for kind in ("body", "header", "idle") for _ in range(SLOW)]
    try:
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: _order(oms.port), range(16)))
        assert codes == [201] * 16
        # Each slow one is cut at request_timeout_s (1 s), whether it trickled or not.
        assert all(_closed_within(s, 5) for s in held)
    finally:
        for s in held:
            s.close()


def test_slow_clients_reconnecting_all_along_beside_real_orders(oms: Proc) -> None:
    """The measurement's setting in small: slow clients kept connected, real orders beside."""
    cut: list[int] = []
    trickle = threading.Thread(target=lambda: cut.append(hold(oms.port, SLOW, "body", 2.5)))
    trickle.start()
    try:
        time.sleep(0.3)
        codes = [_order(oms.port) for _ in range(10)]
    finally:
        trickle.join()
    assert codes == [201] * 10
    assert cut and cut[0] >= SLOW  # each was cut at the deadline and opened again


def test_huge_headers_are_431_and_read_no_further(oms: Proc) -> None:
    """75 MB of headers on one connection were taken in 5 s; 8 such took the OMS from 64 to 407 MB."""
    rss_before = psutil.Process(oms.popen.pid).memory_info().rss
    answers: list[bytes] = []
    for _ in range(8):
        with socket.create_connection(("127.0.0.1", oms.port), timeout=5) as sock:
            sent = 0
            try:
                sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Huge: ")
                while sent < 10 << 20:  # 10 MB, if the server took it
                    sock.sendall(b"y" * 65536)
                    sent += 65536
            except OSError:
                pass
            answers.append(sock.recv(65536) if sent < 10 << 20 else b"took it all")
    assert all(a.startswith(b"HTTP/1.1 431") for a in answers), answers[:1]
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(60))
    with socket.create_connection(("127.0.0.1", oms.port), timeout=5) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 431")
    grown = psutil.Process(oms.popen.pid).memory_info().rss - rss_before
    assert grown < 20 << 20, f"the OMS grew {grown >> 20} MB reading headers it refuses"
    assert _order(oms.port) == 201


def test_connections_per_client_are_bounded_and_others_still_get_in(oms: Proc) -> None:
    limit = int(BOUNDS["max_connections_per_client"])
    held = [open_one(oms.port, "idle") for _ in range(limit)]
    try:
        extra = open_one(oms.port, "idle")
        assert _closed_within(extra, 2)  # over its client's bound: closed at once
        assert _order(oms.port) == 201  # another client is not affected
    finally:
        for s in held:
            s.close()


def test_a_request_reaches_the_app_only_once_it_has_arrived_whole(oms: Proc) -> None:
    """A slow-body client cost the OMS a task woken for each byte it sent, and an answer
    (status 499, counted in its metrics) when the deadline cut it: the app never sees it now."""
    held = [open_one(oms.port, "body") for _ in range(SLOW)]
    try:
        assert all(_closed_within(s, 5) for s in held)  # cut at the deadline
    finally:
        for s in held:
            s.close()
    metrics = httpx.get(f"{oms.url}/metrics", timeout=5).text
    assert 'status="499"' not in metrics, [line for line in metrics.splitlines() if "499" in line]
    assert _order(oms.port) == 201


def _send(port: int, head: bytes, body_parts: list[bytes], expect_100: bool = False) -> bytes:
    """A POST /orders whose body is sent in parts (one per send); its answer's status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        if expect_100:  # the client sends its body only after the server's 100 Continue
            assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        for part in body_parts:
            sock.sendall(part)
        return sock.recv(65536).split(b"\r\n", 1)[0]


def test_bodies_in_parts_large_bodies_and_expect_100_continue_still_get_their_answer(oms: Proc) -> None:
    """The app is given a request once its body has arrived: a body in many parts, one past
    uvicorn's flow-control mark (64 KB, where it pauses reading until the app reads), one past
    the service's bound, and a client that waits for 100 Continue are each answered."""
    order = (b'{"account":"%s","symbol":"BTCUSDT","side":"buy","quantity":0.01,"order_type":"LIMIT",'
             b'"price":40000,"time_in_force":"GTC"}' % ACCOUNT.encode())
    head = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n" % len(order))
    assert _send(oms.port, head + b"\r\n", [order[i:i + 7] for i in range(0, len(order), 7)]) \
        == b"HTTP/1.1 201 Created"
    assert _send(oms.port, head + b"Expect: 100-continue\r\n\r\n", [order], expect_100=True) \
        == b"HTTP/1.1 201 Created"
    chunked = (b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    for size in (200 << 10, 2 << 20):  # past the flow-control mark; past max_body_bytes (1 MiB)
        part = b" " * (64 << 10)
        parts = [b"%x\r\n%s\r\n" % (len(part), part)] * (size // len(part)) + [b"0\r\n\r\n"]
        status = _send(oms.port, chunked, parts)
        assert status.startswith(b"HTTP/1.1 413"), (size, status)  # an order is at most 64 KB


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.contextmanager
def _served(server_class: type[uvicorn.Server], protocol: type[BoundedHttp]) -> Iterator[int]:
    """A uvicorn server of `server_class` answering 200, in a thread of this process: its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = server_class(uvicorn.Config(_ok, host="127.0.0.1", port=port, loop="uvloop", http=protocol,
                                         lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        assert wait_until(lambda: server.started, timeout=10)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_cut_connection_leaves_no_cyclic_garbage() -> None:
    """A request is given to the app only once whole, so one cut before has no app task, whose
    end is where uvicorn breaks the protocol's reference cycle with its request: such a
    connection must still be freed when it closes, not left (~16 objects each) for a garbage
    collection to find, a pause for every order in flight (1,000 slow clients cut every 5 s)."""
    protocol = bounded(KitSettings(request_timeout_s=0.3))
    with _served(uvicorn.Server, protocol) as port:
        gc.collect()
        gc.disable()  # what the connections leave stays until looked at below
        try:
            held = [open_one(port, kind, "127.0.0.1") for kind in ("body", "header", "idle")
                    for _ in range(10)]
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                assert client.get("/livez").status_code == 200  # a request answered, then closed
            assert all(_closed_within(s, 5) for s in held)
            assert wait_until(lambda: not protocol.opened_at, timeout=5)  # the server saw each close
            gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection would free is kept in gc.garbage
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, BoundedHttp)]
            assert not left, f"{len(left)} closed connections were freed only by a collection"
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()


def test_a_service_leaves_what_its_startup_made_out_of_garbage_collections() -> None:
    """The OMS's full collections walked the ~70,000 objects its startup made, every time."""
    gc.unfreeze()
    try:
        with _served(StartupFrozen, bounded(KitSettings())):
            assert wait_until(lambda: gc.get_freeze_count() > 10_000, timeout=5), gc.get_freeze_count()
    finally:
        gc.unfreeze()


def test_requests_that_arrived_whole_are_still_served_alongside(oms: Proc) -> None:
    """Every limit leaves a normal keep-alive client alone: many requests on one connection."""
    with httpx.Client(base_url=oms.url, timeout=5) as client:
        assert [client.get("/livez").status_code for _ in range(5)] == [200] * 5


