"""ptrc publishes every position it changes: the one ledger, read by pnl, hot-cache, risk.

A snapshot is published after the batch that moved the position is committed, by a task
of its own, so applying fills never waits for a publish: pending snapshots are kept newest
per position (a burst of fills on one position is one publish). One that could not be
published (NATS down) stays pending and is retried;
at start every held position is published again, which covers a crash between a commit
and its publish. The POSITIONS stream keeps the last snapshot per subject, so publishing
one again changes nothing for a reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nats.js import JetStreamContext

from services import contract
from services.kit import bus
from services.kit.ledger import Ledger

__all__ = ["SnapshotPublisher"]

log = logging.getLogger(__name__)


class SnapshotPublisher:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.pending: dict[tuple[str, str], contract.PositionSnapshot] = {}
        self.published = 0
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()

    async def changed(self, snapshots: list[contract.PositionSnapshot]) -> None:
        for snap in snapshots:
            self.pending[(snap.account, snap.symbol)] = snap
        self.wake.set()

    async def flush(self) -> None:
        async with self.lock:  # one flush at a time: the stream's last message is the newest
            batch = list(self.pending.items())  # one snapshot per position: no order among them
            acks = await asyncio.gather(
                *(bus.publish_event(self.js, contract.position_subject(snap.account, snap.symbol), snap)
                  for _, snap in batch), return_exceptions=True)
            for (key, snap), ack in zip(batch, acks, strict=True):
                if isinstance(ack, BaseException):
                    continue
                if self.pending.get(key) is snap:
                    del self.pending[key]
                self.published += 1
            failed = next((a for a in acks if isinstance(a, BaseException)), None)
            if failed is not None:
                log.warning("position snapshot not published yet (%d pending): %s", len(self.pending), failed)

    async def load(self, ledger: Ledger, every_s: float = 1.0) -> None:
        """Take every held position to publish again; before any fill is read, so a newer
        snapshot always replaces it rather than the reverse."""
        while True:
            try:
                for snap in await ledger.snapshots():
                    self.pending[(snap.account, snap.symbol)] = snap
                return
            except Exception as exc:
                log.warning("reading the positions to publish them: %s; retrying", exc)
                await asyncio.sleep(every_s)

    async def retry_forever(self, every_s: float = 1.0) -> None:
        """Publish what is pending when woken, and retry at least every `every_s`."""
        while True:
            self.wake.clear()
            await self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), every_s)
