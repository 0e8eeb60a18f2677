"""A stream created anew is another stream, also within the same second.

A NATS restarted with a wiped store recreates EXEC, whose sequences start again at 1. The
ledger's cursor and a sink's committed rows are kept with the stream's identity; when that
was its creation time in whole seconds, a stream recreated in the same second was taken
for the old one, and ptrc skipped the new stream's first fills as applied (CI: ptrc's
"wiped" NATS-restart test read 10 fills where 20 were published).
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from services.kit import bus
from services.kit.ledger import Ledger
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
