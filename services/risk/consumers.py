"""risk's bus work: positions from ptrc's snapshots, quotes from ticks, the `risk.check`
responder. Both views are read in batches from their streams; the start waits (up to
`replay_timeout_s`) until both have caught up, so the first check sees every position."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.aio.msg import Msg
from prometheus_client import Counter

from services import contract
from services.kit import Kit
from services.risk.engine import RiskEngine

__all__ = ["follow_book", "serve_checks"]

log = logging.getLogger(__name__)


async def follow_book(kit: Kit, engine: RiskEngine, timeout: float) -> None:
    """Follow positions and quotes; return once both caught up (or `timeout` passed)."""
    book = engine.book
    kit.spawn(lambda: book.positions.follow(kit.js, "risk"), "risk-positions")
    kit.add_check("positions", book.positions.check)
    kit.spawn(lambda: book.quotes.follow(kit.js, "risk"), "risk-quotes")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(book.positions.ready.wait(), book.quotes.ready.wait()),
                               timeout)
    if not book.positions.ready.is_set():
        log.warning("positions not caught up in %.0fs; serving with what it has", timeout)
    log.info("positions: %d snapshots read", book.positions.snapshots)


async def serve_checks(kit: Kit, engine: RiskEngine, checks: Counter) -> None:
    """Answer `risk.check` requests (queue group: several risk instances share the load),
    counted in `checks` by result."""

    async def on_request(msg: Msg) -> None:
        _, answer = engine.decide_raw(msg.data)
        checks.labels("nats", "approved" if answer["approved"] else "rejected").inc()
        await msg.respond(contract.encode(answer))

    await kit.nc.subscribe(contract.RISK_CHECK, queue=contract.RISK_QUEUE, cb=on_request)
