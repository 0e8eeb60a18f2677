"""Follow a subject with an ordered, ephemeral JetStream consumer: in-memory views.

A service that keeps a view in memory (hot-cache, the latest mid per symbol) needs no
durable consumer: on start it replays what it needs (`DeliverPolicy.ALL` to rebuild
positions from every fill, `LAST_PER_SUBJECT` for the latest tick or bar of each
symbol), then follows new messages. The ordered consumer resets itself on a gap or a
reconnect, so the view never skips a message. Nothing is acked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy

__all__ = ["DeliverPolicy", "follow", "last_sequence"]

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any], Msg], Awaitable[None] | None]


async def follow(js: JetStreamContext, subject: str, handle: EventHandler,
                 deliver_policy: DeliverPolicy = DeliverPolicy.NEW) -> Any:
    """Call `handle(event, msg)` for each message on `subject`; a bad message is logged and skipped."""

    async def on_msg(msg: Msg) -> None:
        try:
            result = handle(orjson.loads(msg.data), msg)
            if result is not None:
                await result
        except Exception:
            log.exception("follow %s: skipped a message on %s", subject, msg.subject)

    return await js.subscribe(subject, cb=on_msg, ordered_consumer=True,
                              deliver_policy=deliver_policy, idle_heartbeat=5.0)


async def last_sequence(js: JetStreamContext, stream: str) -> int:
    """The stream's last sequence now: a replay from the start is complete when it gets there."""
    info = await js.stream_info(stream)
    return int(info.state.last_seq)
