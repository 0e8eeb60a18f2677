"""Measure the order path on real processes: OMS POST /orders MARKET, risk /check (HTTP, NATS).

    python scripts/measure_order_path.py [--orders 3000] [--transport nats|http]

Starts valkey, nats, gateway, risk and oms on free ports (in a temp dir), then sends
requests one at a time over one keep-alive connection from a raw-socket client (so the
client adds microseconds, not an HTTP library's overhead). Warm-up is excluded. This is
a quick engineering measurement; `trade-ops bench` is the honest, open-loop tool.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import start_nats, start_service, start_valkey


class KeepAlive:
    """A minimal HTTP/1.1 client over one socket: enough for JSON bodies with Content-Length."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = f"{host}:{port}"

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.sock.sendall(head + body)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(65536)
        header, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        return int(header.split(b" ", 2)[1]), rest


def summary(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    q = statistics.quantiles(s, n=100)
    return (f"{name:<34} n={len(s):<6} p50={q[49] * 1000:7.3f} ms  p90={q[89] * 1000:7.3f} ms  "
            f"p99={q[98] * 1000:7.3f} ms  max={s[-1] * 1000:7.3f} ms")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(fn, n: int, warmup: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(n + warmup):
        started = time.perf_counter()
        fn(i)
        if i >= warmup:
            out.append(time.perf_counter() - started)
    return out


async def nats_checks(url: str, n: int, warmup: int) -> list[float]:
    import nats

    nc = await nats.connect(url)
    payload = orjson.dumps({"account": "bench", "symbol": "BTCUSDT", "side": "buy", "quantity": 0.001})
    out = []
    for i in range(n + warmup):
        started = time.perf_counter()
        msg = await nc.request("risk.check", payload, timeout=2)
        assert orjson.loads(msg.data)["approved"], msg.data
        if i >= warmup:
            out.append(time.perf_counter() - started)
    await nc.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--transport", default="nats", choices=["nats", "http"])
    parser.add_argument("--profile", metavar="OUT", help="py-spy the oms while it takes orders "
                        "(collapsed stacks to OUT)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="measure-"))
    valkey, natsd = start_valkey(work), start_nats(work)
    env = {"TRADE_OPS_VALKEY_URL": valkey.url, "TRADE_OPS_NATS_URL": natsd.url,
           "TRADE_OPS_LOG_LEVEL": "warning"}
    procs = []
    try:
        procs.append(start_service("gateway", work, env))
        risk = start_service("risk", work, env)
        procs.append(risk)
        oms = start_service("oms", work, {**env, "TRADE_OPS_URL_RISK": risk.url,
                                          "TRADE_OPS_RISK_TRANSPORT": args.transport})
        procs.append(oms)
        time.sleep(0.5)  # a quote reaches risk

        client = KeepAlive(oms.url)
        sides = ("buy", "sell")

        def order(i: int) -> None:
            body = orjson.dumps({"account": "bench", "symbol": "BTCUSDT", "side": sides[i % 2],
                                 "quantity": 0.001, "order_type": "MARKET"})
            status, answer = client.request("POST", "/orders", body)
            assert status == 201, answer

        spy = None
        if os.environ.get("MEASURE_STRACE"):  # engineering aid: syscalls of oms while it takes orders
            spy = subprocess.Popen(["strace", "-c", "-f", "-p", str(oms.popen.pid), "-o",
                                    os.environ["MEASURE_STRACE"]])
            time.sleep(1)
        elif args.profile:
            spy = subprocess.Popen(["py-spy", "record", "-p", str(oms.popen.pid), "-o", args.profile,
                                    "-f", "raw", "-r", "2000", "--nonblocking"])
            time.sleep(1)
        watched = {"oms": oms.popen.pid, "risk": risk.popen.pid, "nats": natsd.popen.pid,
                   "valkey": valkey.popen.pid}
        cpu_before = {k: cpu_s(pid) for k, pid in watched.items()}
        print(summary(f"oms POST /orders MARKET ({args.transport})", timed(order, args.orders, args.warmup)))
        # CPU per order (warm-up included) shows which process the time goes to.
        per = {k: (cpu_s(pid) - cpu_before[k]) / (args.orders + args.warmup) * 1e6
               for k, pid in watched.items()}
        print("cpu per order: " + ", ".join(f"{k} {v:.0f} us" for k, v in per.items()))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)

        risk_client = KeepAlive(risk.url)
        check_body = orjson.dumps({"account": "bench", "symbol": "BTCUSDT", "side": "buy",
                                   "quantity": 0.001})

        def check(i: int) -> None:
            status, answer = risk_client.request("POST", "/check", check_body)
            assert status == 200, answer

        print(summary("risk POST /check (http)", timed(check, args.orders, args.warmup)))
        print(summary("risk risk.check (nats request)",
                      asyncio.run(nats_checks(natsd.url, args.orders, args.warmup))))
    finally:
        for p in reversed(procs):
            p.stop()
        natsd.stop()
        valkey.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
