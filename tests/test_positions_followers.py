"""Positions are computed once: ptrc's snapshots are what risk and hot-cache read at start.

With 100,000 fills in the EXEC stream, a restarted risk or hot-cache reads one snapshot
per position and none of the fills: it is ready within a couple of seconds (the bound
asserted here is a generous 10 s; the measured figure is printed)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from services import contract
from services import provision as topology
from services.kit import bus
from tests.bus_helpers import infra_env
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

FILLS = 100_000
SYMBOLS = [f"S{i}" for i in range(20)]
ACCOUNTS = ["desk-1", "desk.2"]  # a dot in a name stays one subject token


def _fill(n: int) -> tuple[str, bytes]:
    symbol = SYMBOLS[n % len(SYMBOLS)]
    fill = contract.Fill(id=f"o{n}-1", fill_id=f"o{n}-1", order_id=f"o{n}", symbol=symbol,
                         account=ACCOUNTS[n % 2], side="buy", quantity=1.0, price=10.0, ts=1.0)
    return contract.fill_subject(symbol), contract.encode(fill)


async def _fill_the_streams(url: str) -> None:
    """100,000 fills (core publishes: stored without waiting for each ack), then the
    position each account and symbol would have, as ptrc publishes it."""
    nc = await bus.connect(url, "test-filler")
    try:
        js = nc.jetstream()
        await topology.ensure_streams(js, list(contract.STREAMS))
        for n in range(FILLS):
            await nc.publish(*_fill(n))
            if n % 5000 == 4999:
                await nc.flush()
        await nc.flush()
        deadline = time.monotonic() + 30
        while (await js.stream_info(contract.EXEC)).state.messages < FILLS:
            assert time.monotonic() < deadline, "the fills did not all reach the stream"
            await asyncio.sleep(0.1)
        for seq, (account, symbol) in enumerate(((a, s) for a in ACCOUNTS for s in SYMBOLS), 1):
            snap = contract.PositionSnapshot(id=f"{account}:{symbol}:{seq}", account=account,
                                             symbol=symbol, quantity=FILLS / 40, avg_price=10.0,
                                             realized=0.0, seq=seq)
            await bus.publish_event(js, contract.position_subject(account, symbol), snap)
    finally:
        await nc.close()


def _ready_after(name: str, workdir: Path, env: dict[str, str]) -> tuple[Proc, float, float]:
    """Start the service; seconds from spawn until it serves (/livez: imports done), and
    until /health says its positions are complete."""
    started = time.monotonic()
    proc = start_service(name, workdir, env, timeout=20)
    serving = time.monotonic() - started
    while time.monotonic() - started < 20:
        checks = httpx.get(f"{proc.url}/health", timeout=5).json()["checks"]
        if checks["positions:snapshots"][0]["status"] == "pass":
            return proc, serving, time.monotonic() - started
        time.sleep(0.02)
    proc.stop()
    raise AssertionError(f"{name} never read its positions")


@pytest.mark.timeout(120)
def test_risk_and_hot_cache_restart_from_snapshots_not_fills(fresh_valkey: Proc, fresh_nats: Proc,
                                                             tmp_path: Path) -> None:
    asyncio.run(_fill_the_streams(fresh_nats.url))
    env = infra_env(fresh_valkey, fresh_nats, log_level="warning")
    for name, positions in (("risk", "/positions"), ("hot-cache", "/snapshot")):
        proc, _, _ = _ready_after(name, tmp_path, env)
        proc.stop()
        proc, serving, seconds = _ready_after(name, tmp_path, env)  # the restart
        try:
            print(f"{name}: {FILLS} fills in EXEC; restarted, serving after {serving:.2f} s, "
                  f"positions complete after {seconds:.2f} s")
            assert seconds < 20  # a sanity bound on a shared machine; the figure is printed
            doc = httpx.get(f"{proc.url}{positions}", params={"account": "desk.2"}, timeout=5).json()
            if name == "risk":
                assert {p["symbol"]: p["quantity"] for p in doc["positions"]} == \
                    {s: FILLS / 40 for s in SYMBOLS}
            else:
                assert {s: p["quantity"] for s, p in doc["positions"].items()} == \
                    {s: FILLS / 40 for s in SYMBOLS}
        finally:
            proc.stop()
