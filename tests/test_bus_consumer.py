"""The kit's durable consumer on a real NATS: batches, acks per batch, redelivery of what a
batch handler gives back, and a per-message handler on the same loop."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from nats.aio.msg import Msg

from services import contract
from services import provision as topology
from services.kit import bus
from tests.helpers import Proc

pytestmark = pytest.mark.process


async def _consume(url: str, durable: str, n: int, **kwargs: object) -> tuple[list[list[str]], list[int]]:
    """Publish `n` events, then run the consumer until every one was handled once without
    being given back; (the ids of each batch handled, the pending count it left)."""
    subject = f"alt.news.{durable.upper()}"  # a subject of its own: the stream outlives the test
    nc = await bus.connect(url, f"test-{durable}")
    js = nc.jetstream()
    await topology.ensure_streams(js, [contract.ALT])
    for i in range(n):
        await bus.publish_event(js, subject, contract.AltEvent(id=f"{durable}-{i}", symbol="X"))
    batches: list[list[str]] = []
    given_back: set[str] = set()
    done = asyncio.Event()

    async def handle_batch(msgs: list[Msg]) -> list[Msg]:
        ids = [bus.decode(m, contract.AltEvent).id for m in msgs]
        batches.append(ids)
        again = [m for m, i in zip(msgs, ids, strict=True) if i.endswith("-3") and i not in given_back]
        given_back.update(bus.decode(m, contract.AltEvent).id for m in again)
        handled = [i for b in batches for i in b]
        if len(set(handled)) == n and handled.count(f"{durable}-3") == 2:
            done.set()
        return again

    spec = contract.Durable(durable, contract.ALT, subject)
    await topology.ensure_durable(js, f"test-{durable}", spec)
    task = asyncio.create_task(bus.durable_consumer(js, spec, handle_batch=handle_batch,
                                                    **kwargs))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.3)  # the last acks reach the server
        info = await js.consumer_info(contract.ALT, durable)
        return batches, [info.num_ack_pending, info.num_pending]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await js.delete_consumer(contract.ALT, durable)
        await nc.close()


def test_a_batch_handler_gets_what_arrived_at_once_and_what_it_gives_back_comes_again(
        nats_server: Proc) -> None:
    batches, pending = asyncio.run(_consume(nats_server.url, "bus-batch", 20, linger=0.2))
    assert len(batches[0]) == 20, batches  # published before the consumer started: one batch
    assert batches[1] == ["bus-batch-3"], batches  # only the message given back, redelivered
    assert pending == [0, 0]  # every other message acked with its batch


def test_a_batch_is_at_most_batch_messages(nats_server: Proc) -> None:
    batches, pending = asyncio.run(_consume(nats_server.url, "bus-small", 10, batch=4, linger=0.2))
    assert [len(b) for b in batches[:3]] == [4, 4, 2], batches
    assert pending == [0, 0]


def test_a_message_handler_that_raises_redeliver_is_redelivered_and_the_rest_acked(nats_server: Proc) -> None:
    async def run() -> tuple[list[str], int]:
        nc = await bus.connect(nats_server.url, "test-each")
        js = nc.jetstream()
        await topology.ensure_streams(js, [contract.ALT])
        for i in range(5):
            await bus.publish_event(js, "alt.news.EACH", contract.AltEvent(id=f"each-{i}", symbol="EACH"))
        seen: list[str] = []

        async def handle(msg: Msg) -> None:
            event_id = bus.decode(msg, contract.AltEvent).id
            seen.append(event_id)
            if event_id == "each-1" and seen.count(event_id) == 1:
                raise bus.Redeliver("not yet")

        spec = contract.Durable("bus-each", contract.ALT, "alt.news.EACH")
        await topology.ensure_durable(js, "test-each", spec)
        task = asyncio.create_task(bus.durable_consumer(js, spec, handle=handle))
        try:
            for _ in range(100):
                if seen.count("each-1") == 2:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            info = await js.consumer_info(contract.ALT, "bus-each")
            return seen, info.num_ack_pending + info.num_pending
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await js.delete_consumer(contract.ALT, "bus-each")
            await nc.close()

    seen, pending = asyncio.run(run())
    assert sorted(seen) == sorted([f"each-{i}" for i in range(5)] + ["each-1"]), seen
    assert pending == 0
