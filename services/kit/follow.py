"""Follow a subject into memory: the cursor-kept consumer, with the cursor held in memory.

A service that keeps a view in memory (hot-cache, the latest quote per symbol, positions
from ptrc's snapshots) reads the stream from its start, or from the last message of each
subject, then follows new messages in batches. The cursor is the last stream sequence
handled, so after a reconnect or a handler error the reader starts again right after it:
the view never skips a message and never sees one twice. A stream created anew (its
identity changed) is read from its start. Nothing is acked and the server
keeps no state for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

from services.kit import bus

__all__ = ["follow"]

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Msg]], Awaitable[None] | None]


async def follow(js: JetStreamContext, *, stream: str, subject: str, handle: BatchHandler,
                 name: str, latest: bool = False, ready: asyncio.Event | None = None,
                 batch: int = 512, linger: float = bus.LINGER_S) -> None:
    """Call `handle(msgs)` for each batch on `subject` forever (run it as a task).

    `latest`: start from the last message of each subject, not the stream's first.
    `ready` is set once the reader has caught up with what the stream held at its start.
    `linger`: how long a batch waits for more after its first message (bus.FOLLOW_LINGER_S
    for a view nothing on the order path reads).
    """
    seq = 0
    identity: str | None = None

    async def cursor() -> int:
        nonlocal seq, identity
        catching_up = ready is not None and not ready.is_set()
        # One look at the stream: its identity, and (catching up) whether it holds anything.
        info = await js.stream_info(stream, subjects_filter=subject if catching_up else None)
        # A stream created anew (a NATS whose store was wiped, provisioned again) starts at 1:
        # the old position would skip its messages until it passed the old sequence.
        now = bus.identity_of(stream, info)
        if identity is not None and now != identity:
            log.info("%s: %s was created anew; reading it from its start", name, stream)
            seq = 0
        identity = now
        if ready is not None and catching_up and seq == 0 and not info.state.subjects:
            ready.set()  # nothing to catch up with
        return seq

    async def on_batch(msgs: list[Msg]) -> None:
        nonlocal seq
        result = handle(msgs)
        if result is not None:
            await result
        last = msgs[-1].metadata
        seq = last.sequence.stream
        if ready is not None and last.num_pending == 0:
            ready.set()

    await bus.cursor_consumer(js, stream=stream, subject=subject, cursor=cursor, handle=on_batch,
                              name=name, batch=batch, linger=linger,
                              first=DeliverPolicy.LAST_PER_SUBJECT if latest else DeliverPolicy.ALL)
