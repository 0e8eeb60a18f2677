"""The kit's durable consumer on a real NATS: a backlog slower than ack_wait is handled once.

After an outage a consumer holds a backlog; when working through it takes longer than
`ack_wait`, the server redelivers everything still unacknowledged while the first copies
are still queued, and each message is handled twice (seen in execution-quality after a
valkey kill and a NATS stop: 469 of 512 held messages redelivered, at load 130).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services import contract
from services import provision as topology
from services.kit import bus
from tests.helpers import Proc


async def _durable(js: JetStreamContext, service: str, name: str, stream: str, subject: str,
                   ack_wait_s: float = 30.0) -> contract.Durable:
    """A durable made as the operator makes one (services only bind to it)."""
    durable = contract.Durable(name, stream, subject, ack_wait_s=ack_wait_s)
    await topology.ensure_durable(js, service, durable)
    return durable

pytestmark = pytest.mark.process


@contextlib.asynccontextmanager
async def _running(nc: NATS, consumer: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """The consumer runs for the block; then it is stopped and the connection closed."""
    task = asyncio.create_task(consumer)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await nc.close()


async def test_a_backlog_slower_than_ack_wait_is_handled_once(fresh_nats: Proc) -> None:
    nc = await bus.connect(fresh_nats.url, "consumer-test")
    js = nc.jetstream()
    await js.add_stream(name="BACKLOG", subjects=["backlog.>"])
    for i in range(24):
        await js.publish("backlog.x", str(i).encode())
    handled: Counter[bytes] = Counter()

    async def slow(msg: Msg) -> None:  # 24 x 0.15 s = 3.6 s of work, ack_wait 1 s
        handled[msg.data] += 1
        await asyncio.sleep(0.15)

    durable = await _durable(js, "consumer-test", "slow", "BACKLOG", "backlog.>", ack_wait_s=1.0)
    async with _running(nc, bus.durable_consumer(js, durable, handle=slow)):
        floor = 0
        for _ in range(100):
            await asyncio.sleep(0.1)
            with contextlib.suppress(NotFoundError):  # not created yet
                floor = (await js.consumer_info("BACKLOG", "slow")).ack_floor.stream_seq
            if floor == 24:
                break
        assert floor == 24
        await asyncio.sleep(1.2)  # anything the server would still redeliver, it has now
        assert sorted(handled) == sorted(str(i).encode() for i in range(24))
        assert set(handled.values()) == {1}, handled
        info = await js.consumer_info("BACKLOG", "slow")
        assert info.num_redelivered == 0 and info.num_ack_pending == 0, info


async def test_a_push_consumer_delivering_outside_our_inbox_is_replaced_from_its_ack_floor(
        fresh_nats: Proc) -> None:
    """A durable created by an earlier version delivers to `_INBOX.<random>`, which the
    service's NATS user may not subscribe to: the operator makes it again on the service's
    own deliver subject, starting after what was already acknowledged."""
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await bus.connect(fresh_nats.url, "exeq")
    js = nc.jetstream()
    await js.add_stream(name="OLD", subjects=["old.>"])
    for i in range(5):
        await js.publish("old.x", str(i).encode())
    await js.add_consumer("OLD", ConsumerConfig(durable_name="exeq", deliver_subject="_INBOX.legacy.abc",
                                                ack_policy=AckPolicy.EXPLICIT, filter_subject="old.>"))
    old = await nc.subscribe("_INBOX.legacy.abc")
    for _ in range(3):  # the earlier version handled and acked three
        await (await old.next_msg(timeout=2)).ack_sync()  # the server has it before we look
    await old.unsubscribe()
    seen: list[bytes] = []

    async def handle(msg: Msg) -> None:
        seen.append(msg.data)

    durable = await _durable(js, "exeq", "exeq", "OLD", "old.>")
    async with _running(nc, bus.durable_consumer(js, durable, handle=handle)):
        for _ in range(50):
            await asyncio.sleep(0.1)
            if len(seen) >= 2:
                break
        info = await js.consumer_info("OLD", "exeq")
        assert info.config.deliver_subject == contract.deliver_subject("exeq", "exeq"), info.config
        assert seen == [b"3", b"4"]


async def test_under_a_steady_flow_a_batch_waits_until_its_oldest_message_is_linger_old(
        fresh_nats: Proc) -> None:
    """A lake sink commits a batch per `sink_max_wait_s`, not per message: with messages
    arriving every 10 ms and `linger` 0.4 s, 60 messages are a handful of batches. (The
    linger applied only after an empty wait, so a steady flow gave batches of one or two.)"""
    nc = await bus.connect(fresh_nats.url, "batch-test")
    js = nc.jetstream()
    await js.add_stream(name="FLOW", subjects=["flow.>"])
    sizes: list[int] = []

    async def commit(msgs: list[Msg]) -> None:
        sizes.append(len(msgs))
        await asyncio.sleep(0.02)  # a commit takes a while; more arrive meanwhile

    durable = await _durable(js, "batch-test", "flow", "FLOW", "flow.>")
    async with _running(nc, bus.durable_consumer(js, durable, handle_batch=commit, batch=500, linger=0.4)):
        for i in range(60):
            await js.publish("flow.x", str(i).encode())
            await asyncio.sleep(0.01)
        for _ in range(50):
            if sum(sizes) >= 60:
                break
            await asyncio.sleep(0.1)
        assert sum(sizes) == 60, sizes
        assert len(sizes) <= 6, sizes
