"""A stream created anew is another stream, also within the same second, and a reader
that keeps its position reads it from its start.

A NATS restarted with a wiped store recreates EXEC, whose sequences start again at 1. The
ledger's cursor and a sink's committed rows are kept with the stream's identity; when that
was its creation time in whole seconds, a stream recreated in the same second was taken
for the old one, and ptrc skipped the new stream's first fills as applied (CI: ptrc's
"wiped" NATS-restart test read 10 fills where 20 were published).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from services.kit import bus
from services.kit.follow import follow
from services.kit.ledger import Ledger
from tests.bus_helpers import restart_nats
from tests.helpers import Proc

pytestmark = pytest.mark.process


async def test_a_stream_created_again_in_the_same_second_is_another_stream(fresh_nats: Proc) -> None:
    nc = await bus.connect(fresh_nats.url, "identity-test")
    js = nc.jetstream()
    try:
        for _ in range(20):  # until both creations fall in one second (the case that failed)
            await js.add_stream(name="IDENT", subjects=["ident.>"])
            first = await bus.stream_identity(js, "IDENT")
            await js.delete_stream("IDENT")
            await js.add_stream(name="IDENT", subjects=["ident.>"])
            second = await bus.stream_identity(js, "IDENT")
            await js.delete_stream("IDENT")
            if first.split(".")[0] == second.split(".")[0]:  # "IDENT@<second>"
                break
        assert first.split(".")[0] == second.split(".")[0], "never two in one second"
        assert first != second
        assert first.startswith("IDENT@") and bus.legacy_identity(first) == first.split(".")[0]
    finally:
        await nc.close()


async def test_a_cursor_an_earlier_version_kept_is_still_read(fresh_valkey: Proc) -> None:
    """After an upgrade ptrc goes on from the cursor kept under the identity in whole
    seconds (not from 0: EXEC keeps 30 days of fills and the seen ids 7); its own key,
    once written, wins."""
    valkey = aioredis.Redis.from_url(fresh_valkey.url)
    try:
        ledger = Ledger(valkey, "ptrc")
        ledger.stream = "EXEC@1796520447.123456"
        assert await ledger.cursor() == 0
        await valkey.set("ptrc:cursor:EXEC@1796520447", 7)
        assert await ledger.cursor() == 7
        await valkey.set(ledger.cursor_key, 9)
        assert await ledger.cursor() == 9
        ledger.stream = "EXEC@1796520512.000001"  # a stream created later: nothing of the old one
        assert await ledger.cursor() == 0
    finally:
        await valkey.aclose()


async def test_a_view_reads_a_stream_created_anew_from_its_start(fresh_nats: Proc, tmp_path: Path) -> None:
    """A view in memory (positions, quotes) after a NATS restart with a wiped store and the
    streams made again: it used to go on from its old sequence, skipping the new stream's
    messages until their sequences passed it."""
    nc = await bus.connect(fresh_nats.url, "follow-test")
    js = nc.jetstream()
    seen: list[bytes] = []
    reader = asyncio.create_task(follow(js, stream="VIEW", subject="view.>", name="view-test",
                                        handle=lambda msgs: seen.extend(m.data for m in msgs)))
    again: Proc | None = None
    try:
        await js.add_stream(name="VIEW", subjects=["view.>"])
        for i in range(3):
            await js.publish("view.a", f"old-{i}".encode())
        assert await _until(lambda: len(seen) == 3), seen
        fresh_nats.stop()
        (tmp_path / "wiped").mkdir()
        again = restart_nats(fresh_nats, tmp_path / "wiped")
        assert await _until(lambda: nc.is_connected and bus.reconnects(js) > 0, 15)
        await js.add_stream(name="VIEW", subjects=["view.>"])  # as the operator provisions it
        for i in range(2):
            await js.publish("view.a", f"new-{i}".encode())
        assert await _until(lambda: len(seen) == 5, 15), seen
        assert seen[3:] == [b"new-0", b"new-1"]
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await nc.close()
        if again is not None:
            again.stop()


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True
