"""Order-to-fill time through exeq and the venue: a measurement, not a test.

    python -m trade_ops.bench.order_to_fill                   # starts valkey, nats, exeq, live-gateway
    python -m trade_ops.bench.order_to_fill --nats URL        # against a running stack

Publishes one tick, then MARKET orders on `orders.new` one at a time (alternating sides,
after a warm-up that is not counted) and times each from just before its publish to the
arrival of its fill on `exec.fill.{SYMBOL}`: JetStream ack of the order, exeq's routing,
the venue's work and its acked publish of the fill. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import orjson

from services import contract
from services.contract import now_ms
from services.kit import bus

__all__ = ["measure"]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(nats_url: str, orders: int, warmup: int) -> dict[str, Any]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await bus.ensure_streams(js, list(bus.STREAMS))
    symbol, account = "M" + uuid.uuid4().hex[:6].upper(), "measure-" + uuid.uuid4().hex[:6]
    waiting: dict[str, asyncio.Future[float]] = {}

    async def on_fill(msg: Any) -> None:
        fut = waiting.pop(orjson.loads(msg.data)["order_id"], None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    await nc.subscribe(contract.fill_subject(symbol), cb=on_fill)
    await bus.publish_event(js, contract.tick_subject(symbol), {
        "id": f"{symbol}-1", "symbol": symbol, "seq": 1, "bid": 100.0, "ask": 100.01, "ts": now_ms()})
    latencies: list[float] = []
    acks: list[float] = []  # the order's own JetStream publish, part of every latency
    try:
        for i in range(warmup + orders):
            oid = f"{account}-{i}"
            fut = waiting[oid] = asyncio.get_running_loop().create_future()
            order = {"order_id": oid, "account": account, "symbol": symbol,
                     "side": "buy" if i % 2 == 0 else "sell", "quantity": 0.001,
                     "order_type": "MARKET", "price": None, "time_in_force": "GTC",
                     "status": "ACCEPTED", "created_ts": now_ms()}
            started = time.perf_counter()
            await bus.publish_event(js, contract.ORDERS_NEW, {"id": oid, "ts": now_ms(), "order": order})
            acked = time.perf_counter()
            filled = await asyncio.wait_for(fut, 10 if i else 30)  # the first waits for the quote
            if i >= warmup:
                latencies.append((filled - started) * 1000)
                acks.append((acked - started) * 1000)
    finally:
        await nc.close()
    return {"orders": orders, "warmup": warmup, "unit": "ms",
            "median": round(statistics.median(latencies), 3), "p90": round(_pct(latencies, 0.9), 3),
            "p99": round(_pct(latencies, 0.99), 3), "max": round(max(latencies), 3),
            "min": round(min(latencies), 3),
            "order_publish_ack_median": round(statistics.median(acks), 3)}


def _with_own_stack(orders: int, warmup: int, offset: int) -> dict[str, Any]:
    """exeq and live-gateway (and what they need), started by the supervisor in a
    temporary run directory at `offset`, stopped afterwards."""
    from trade_ops import supervisor
    from trade_ops.rundir import RunDir
    from trade_ops.stack import load_stack

    run_dir = RunDir(Path(tempfile.mkdtemp(prefix="order-to-fill-")))
    stack = load_stack(offset=offset)
    try:
        supervisor.up(run_dir, stack, only=["exeq", "live-gateway"], timeout=60)
        return asyncio.run(measure(stack.nats_url(), orders, warmup))
    finally:
        supervisor.down(run_dir)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m trade_ops.bench.order_to_fill", description=__doc__)
    parser.add_argument("--nats", help="NATS URL of a running stack (default: start one)")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--port-offset", type=int, default=0, help="where to start its own stack")
    args = parser.parse_args(argv)
    if args.nats:
        result = asyncio.run(measure(args.nats, args.orders, args.warmup))
    else:
        result = _with_own_stack(args.orders, args.warmup, args.port_offset)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
