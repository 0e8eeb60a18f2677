"""A connection that reads its socket in batches (bus.connect(read_every=...)), on a real NATS.

It must lose nothing and keep order, read what came in one go rather than a read per
message, and keep doing so after NATS restarts (the client reads a new socket then).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from services.kit import bus
from tests.bus_helpers import restart_nats
from tests.helpers import Proc

pytestmark = pytest.mark.process

EVERY = 0.1
N = 60


def _count_reads(nc: NATS) -> list[int]:
    """Count the times the current socket is read (each one a wake-up of the process for
    it): while reading is paused, arriving messages wait in the kernel and count nothing."""
    transport: Any = nc._transport
    protocol = transport._io_writer.transport.get_protocol()
    calls = [0]
    original = protocol.data_received

    def counted(data: bytes) -> None:
        calls[0] += 1
        original(data)

    protocol.data_received = counted
    return calls


async def _burst(url: str, got: list[bytes], done: asyncio.Event, tag: str) -> float:
    """Publish N messages about 1 ms apart; how long publishing took."""
    pub = await bus.connect(url, "test-burst")
    try:
        started = time.monotonic()
        for i in range(N):
            await pub.publish("batch.test", f"{tag}-{i}".encode())
            await pub.flush()
            await asyncio.sleep(0.001)
        took = time.monotonic() - started
        await asyncio.wait_for(done.wait(), 10)
        return took
    finally:
        await pub.close()


async def _receive_bursts(url: str, restart: Any) -> tuple[list[bytes], list[tuple[int, float]], bool]:
    nc = await bus.connect(url, "test-batched", read_every=EVERY)
    got: list[bytes] = []
    done = asyncio.Event()

    async def on_msg(msg: Any) -> None:
        got.append(msg.data)
        if len(got) % N == 0:
            done.set()

    try:
        await nc.subscribe("batch.test", cb=on_msg)
        await nc.flush()
        bursts = []
        for tag in ("before", "after"):
            if tag == "after":
                await restart()
                for _ in range(200):  # reconnected, and subscribed again by the client
                    if nc.is_connected and nc.stats["reconnects"] >= 1:
                        break
                    await asyncio.sleep(0.05)
                await nc.flush()
            reads = _count_reads(nc)
            done.clear()
            took = await _burst(url, got, done, tag)
            bursts.append((reads[0], took))
        wrapped = getattr(nc._transport, "_read_every", None) == EVERY
        return got, bursts, wrapped
    finally:
        await nc.close()


@pytest.mark.timeout(60)
def test_a_batched_connection_reads_in_batches_loses_nothing_and_survives_a_restart(
        fresh_nats: Proc, tmp_path: Path) -> None:
    box = {"nats": fresh_nats}

    async def restart() -> None:
        box["nats"].stop()
        box["nats"] = restart_nats(fresh_nats, tmp_path)

    try:
        got, bursts, wrapped = asyncio.run(_receive_bursts(fresh_nats.url, restart))
    finally:
        box["nats"].stop()
    expected = [f"{tag}-{i}".encode() for tag in ("before", "after") for i in range(N)]
    assert got == expected  # nothing lost, nothing twice, in order
    assert wrapped, "the new socket after the restart is read in batches too"
    for reads, took in bursts:
        # One read per EVERY at most (plus the first one and the last), whatever the pace:
        # without batching it is about one read per message (N).
        assert reads <= took / EVERY + 3 < N / 2, (reads, took)
