"""risk's bus work: fills replayed into positions, quotes from ticks, the `risk.check` responder.

Positions are rebuilt on every start by replaying `exec.fill.>` from the start of the
EXEC stream with an ordered consumer (then it follows live); fills are deduplicated by
fill id in the book, so a replay or redelivery never double-counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from services import contract
from services.kit import Kit, bus
from services.risk.engine import RiskEngine

__all__ = ["follow_fills", "follow_quotes", "serve_checks"]

log = logging.getLogger(__name__)

FILLS = contract.FILL_ALL


async def follow_fills(kit: Kit, engine: RiskEngine, timeout: float) -> None:
    """Subscribe from the first fill; return once the replay has caught up (or timed out)."""
    assert kit.js is not None
    caught_up = asyncio.Event()
    applied = kit.metrics.counter("risk_fills_applied_total", "fills applied to positions")

    async def on_fill(msg: Msg) -> None:
        try:
            if engine.book.apply_fill(bus.decode(msg)):
                applied.inc()
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("skipping a malformed fill: %s", exc)
        if msg.metadata.num_pending == 0:
            caught_up.set()

    info = await kit.js.stream_info(contract.EXEC, subjects_filter=FILLS)
    if not info.state.subjects:
        caught_up.set()
    await kit.js.subscribe(FILLS, cb=on_fill, ordered_consumer=True,
                           deliver_policy=DeliverPolicy.ALL)
    try:
        await asyncio.wait_for(caught_up.wait(), timeout)
    except TimeoutError:
        log.warning("fills replay did not catch up in %.0fs; serving with what it has", timeout)
    log.info("positions rebuilt from %d fills", len(engine.book.seen_fills))


async def follow_quotes(kit: Kit, engine: RiskEngine) -> None:
    """Seed every symbol's quote from its last stored tick, then follow live ticks."""
    assert kit.js is not None and kit.nc is not None
    stored = await kit.js.stream_info(contract.TICKS, subjects_filter=contract.TICK_ALL)
    for subject in sorted(stored.state.subjects or {}):
        with contextlib.suppress(NotFoundError, KeyError, ValueError, TypeError):
            last = await kit.js.get_last_msg(contract.TICKS, subject)
            engine.book.on_tick(orjson.loads(last.data or b"{}"))

    async def on_tick(msg: Msg) -> None:
        with contextlib.suppress(KeyError, ValueError, TypeError):
            engine.book.on_tick(orjson.loads(msg.data))

    await kit.nc.subscribe(contract.TICK_ALL, cb=on_tick)


async def serve_checks(kit: Kit, engine: RiskEngine) -> None:
    """Answer `risk.check` requests (queue group: several risk instances share the load)."""
    assert kit.nc is not None
    checks = kit.metrics.counter("risk_checks_total", "risk checks by transport and result",
                                 ("transport", "result"))

    async def on_request(msg: Msg) -> None:
        _, answer = engine.decide_raw(msg.data)
        checks.labels("nats", "approved" if answer["approved"] else "rejected").inc()
        await msg.respond(orjson.dumps(answer))

    kit.state["checks_counter"] = checks
    await kit.nc.subscribe(contract.RISK_CHECK, queue=contract.RISK_QUEUE, cb=on_request)
