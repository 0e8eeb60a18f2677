"""Seed a running stack with N fills (and the OMS orders they belong to), to measure doctor's
reconciliation on a stack with a long history:

    python -m tests.seed_fills --run-dir /tmp/doctor-run --fills 50000

Each fill is a real event on the EXEC stream (ptrc, pnl and the event-writer take it as
any other); each order a real OMS record in Valkey. Sides alternate, so positions stay flat.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from services import contract
from services.oms.models import OrderRequest, new_order
from trade_ops.rundir import RunDir

CHUNK = 500


async def seed(run_dir: RunDir, fills: int) -> None:
    import nats
    import redis.asyncio as aioredis

    from trade_ops import credentials

    stack = run_dir.stack()
    creds = credentials.load(run_dir.path)
    user = credentials.ADMIN_USER
    login = credentials.valkey_login(run_dir.path)
    valkey = aioredis.from_url(stack.valkey_url(), **({"username": login[0], "password": login[1]}
                                                     if login else {}))
    nc = await nats.connect(stack.nats_url(), **({"user": user, "password": creds.nats[user]}
                                                 if creds and user in creds.nats else {}))
    js = nc.jetstream()
    started = time.perf_counter()
    try:
        for start in range(0, fills, CHUNK):
            now = contract.now_ms()
            batch = [contract.Fill(id=f"seed-{i}-1", fill_id=f"seed-{i}-1", order_id=f"seed-{i}",
                                   account="seed", symbol="BTCUSDT", side="buy" if i % 2 == 0 else "sell",
                                   quantity=0.001, price=60_000.0, final=True, ts=now)
                     for i in range(start, min(fills, start + CHUNK))]
            async with valkey.pipeline(transaction=False) as pipe:
                for f in batch:  # the OMS's own record of an accepted order: the fill completes it
                    req = OrderRequest(account="seed", symbol=f.symbol, side=f.side, quantity=f.quantity,
                                       order_type="MARKET", time_in_force="IOC")
                    record = new_order(req, f.order_id, now)
                    record.status, record.risk_level = "ACCEPTED", "LOW"
                    pipe.set(contract.ORDER_KEY.format(order_id=f.order_id), contract.encode(record))
                await pipe.execute()
            await asyncio.gather(*(js.publish(contract.fill_subject(f.symbol), contract.encode(f),
                                              headers={"Nats-Msg-Id": f.id}) for f in batch))
    finally:
        await nc.close()
        await valkey.aclose()
    print(f"seeded {fills} fills in {time.perf_counter() - started:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--fills", type=int, default=50_000)
    args = parser.parse_args()
    asyncio.run(seed(RunDir(args.run_dir), args.fills))


if __name__ == "__main__":
    main()
