"""Every position, as ptrc publishes it: the one ledger, followed in memory.

ptrc applies each fill once and publishes the position it changed on
`positions.{ACCOUNT}.{SYMBOL}`; the POSITIONS stream keeps only the last snapshot of
each subject. A follower (pnl, hot-cache, risk) reads those, as many as there are
positions, however many fills are behind them, then follows new ones: no replay of
fills, no set of fill ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services import contract
from services.kit import bus
from services.kit.follow import follow
from services.kit.health import Check
from services.kit.positions import Position

__all__ = ["PositionBook"]

log = logging.getLogger(__name__)


class PositionBook:
    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Position]] = {}
        self.snapshots = 0  # applied since the start
        self.ready = asyncio.Event()  # set once every stored snapshot is read
        # Called with each snapshot applied (risk: which fills the position now includes).
        self.on_apply: Callable[[contract.PositionSnapshot], None] | None = None

    def apply(self, snap: contract.PositionSnapshot) -> None:
        self.accounts.setdefault(snap.account, {})[snap.symbol] = Position(
            snap.quantity, snap.avg_price, snap.realized)
        self.snapshots += 1
        if self.on_apply is not None:
            self.on_apply(snap)

    def of(self, account: str) -> dict[str, Position]:
        return dict(sorted(self.accounts.get(account, {}).items()))

    def quantity(self, account: str, symbol: str) -> float:
        pos = self.accounts.get(account, {}).get(symbol)
        return pos.quantity if pos is not None else 0.0

    def handle(self, msgs: list[Msg]) -> None:
        for _, snapshot in bus.decode_each(msgs, contract.PositionSnapshot):  # the kit skips malformed ones
            self.apply(snapshot)

    async def check(self) -> Check:
        """For /health: warn until every stored snapshot is read."""
        if self.ready.is_set():
            return Check("positions", "snapshots", "pass", "component", self.snapshots, "snapshots")
        return Check("positions", "snapshots", "warn", "component", self.snapshots, "snapshots",
                     output="reading the position snapshots: positions are not complete yet")

    async def follow(self, js: JetStreamContext, name: str, linger: float = bus.LINGER_S) -> None:
        """Read every stored snapshot, then follow new ones, forever (run it as a task)."""
        await follow(js, stream=contract.POSITIONS, subject=contract.POSITION_ALL, handle=self.handle,
                     name=f"{name}-positions", ready=self.ready, linger=linger)
