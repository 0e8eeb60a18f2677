"""Measure sink-ticks on this machine: throughput into Delta and tick -> row delay.

    python -m trade_ops.bench.sink_throughput [--backlog 20000] [--rate 500] [--seconds 10]

Starts its own nats-server and sink-ticks (real processes, a temporary lake), then:
1. steady: publishes at a constant rate with `ts` = publish time; reports the sink's
   commit delay percentiles (commit finished - tick ts), end to end;
2. backlog: stops the sink, publishes N ticks, starts it again; throughput = rows
   committed per second from its first commit to its last (start-up excluded).
Prints one JSON document. Extra TRADE_OPS_SINK_* variables pass through to the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from services import contract
from services.contract import now_ms
from services.kit import bus
from trade_ops import infra

SYMBOLS = [f"SYM{i}" for i in range(10)]


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        doc: dict[str, Any] = json.loads(resp.read())
        return doc


def _wait(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("gave up waiting")


def _tick(seq: int) -> tuple[str, dict[str, Any]]:
    symbol = SYMBOLS[seq % len(SYMBOLS)]
    tick = {"id": f"{symbol}-{seq}", "symbol": symbol, "seq": seq, "bid": 99.99, "ask": 100.01,
            "last": 100.0, "bid_size": 1, "ask_size": 1, "volume": 1, "ts": now_ms()}
    return contract.tick_subject(symbol), tick


async def _publish(nats_url: str, first: int, n: int, rate: float | None) -> float:
    nc = await bus.connect(nats_url, "bench")
    js = nc.jetstream()
    await bus.ensure_streams(js, [contract.TICKS])
    started = time.monotonic()
    if rate is None:  # as fast as acks come back, 200 in flight
        for chunk in range(first, first + n, 200):
            await asyncio.gather(*(bus.publish_event(js, *_tick(s))
                                   for s in range(chunk, min(chunk + 200, first + n))))
    else:
        for i in range(n):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            await bus.publish_event(js, *_tick(first + i))
    await nc.close()
    return started


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", "--backlog", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sink-bench-"))
    port, sink_port = infra.free_port(), infra.free_port()
    nats_url, sink_url = f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{sink_port}"
    log = (work / "bench.log").open("ab")
    nats = subprocess.Popen(infra.nats_command(port, infra.free_port(), work / "nats"), stdout=log,
                            stderr=subprocess.STDOUT)
    env = {**os.environ, "TRADE_OPS_NATS_URL": nats_url, "TRADE_OPS_LAKE_URI": str(work / "lake"),
           "TRADE_OPS_PORT": str(sink_port), "TRADE_OPS_LOG_LEVEL": "warning"}

    def start_sink() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "services", "sink-ticks"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        _wait(lambda: _get(sink_url + "/livez"), 30)
        return proc

    procs = [nats]
    try:
        procs.append(start_sink())
        steady_n = min(int(args.rate * args.seconds), 10_000)  # the sink keeps 10,000 delays
        asyncio.run(_publish(nats_url, 0, steady_n, args.rate))
        _wait(lambda: _get(sink_url + "/stats")["rows_written"] >= steady_n, 60)
        delays = _get(sink_url + "/stats")["sinks"]["sink-ticks"]["commit_delay_ms"]
        _stop(procs.pop())
        # the backlog: published while the sink is down, drained after it starts
        asyncio.run(_publish(nats_url, steady_n, args.burst, None))
        procs.append(start_sink())
        _wait(lambda: _get(sink_url + "/stats")["rows_written"] > 0, 60)
        t0, r0 = time.monotonic(), _get(sink_url + "/stats")["rows_written"]
        _wait(lambda: _get(sink_url + "/stats")["rows_written"] >= args.burst, 300)
        drain_s = time.monotonic() - t0
        stats = _get(sink_url + "/stats")
        print(json.dumps({
            "steady": {"rate": args.rate, "events": steady_n, "commit_delay_ms": delays},
            "backlog": {"events": args.burst, "measured_events": args.burst - r0,
                        "seconds": round(drain_s, 2), "events_per_s": round((args.burst - r0) / drain_s),
                        "batches": stats["batches"]},
            "sink_env": {k: v for k, v in os.environ.items() if k.startswith("TRADE_OPS_SINK_")},
        }, indent=2))
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
