"""pnl: realized and unrealized P&L per account and symbol, snapshotted to the lake."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import APIRouter, Request

from services.kit import Check, FollowerSettings, Kit, bus, create_app, service_state
from services.kit.auth import account_of
from services.kit.lake import probe_writable
from services.kit.ledger import DEFAULT_ACCOUNT
from services.kit.names import AccountQuery
from services.kit.position_book import PositionBook
from services.kit.quotes import QuoteBook
from services.pnl.snapshot import SnapshotOutcome, account_pnl, snapshot_forever

__all__ = ["app"]


class PnlSettings(FollowerSettings):
    service: str = "pnl"
    pnl_snapshot_s: float = 5.0


@dataclass(frozen=True, slots=True)
class PnlState:
    book: PositionBook  # positions, from ptrc's snapshots
    quotes: QuoteBook  # marks, from ticks
    snapshots: SnapshotOutcome = field(default_factory=SnapshotOutcome)


router = APIRouter()


@router.get("/pnl")
async def pnl(request: Request, account: AccountQuery = DEFAULT_ACCOUNT) -> dict[str, object]:
    state = service_state(request, PnlState)
    return account_pnl(state.book, state.quotes, account_of(request, account))


def lake_check(kit: Kit, snapshots: SnapshotOutcome) -> Check:
    started = time.perf_counter()
    try:
        probe_writable(kit.settings.lake_uri)
    except Exception as exc:
        return Check("lake", "writable", "fail", "datastore", kit.settings.lake_uri,
                     output=f"cannot write the lake: {type(exc).__name__}: {exc}")
    ms = round((time.perf_counter() - started) * 1000, 3)
    error = snapshots.error
    return Check("lake", "writable", "warn" if error else "pass", "datastore", ms, "ms",
                 output=f"last snapshot failed: {error}" if error else None)


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[PnlState]:
    settings = kit.settings_as(PnlSettings)
    state = PnlState(PositionBook(), QuoteBook())
    book, quotes = state.book, state.quotes
    kit.spawn(lambda: quotes.follow(kit.js, "pnl"), "pnl-quotes")
    kit.spawn(lambda: book.follow(kit.js, "pnl", bus.FOLLOW_LINGER_S), "pnl-positions")  # a view for readers

    async def check() -> Check:
        return await asyncio.to_thread(lake_check, kit, state.snapshots)

    kit.add_check("lake", check, "datastore")
    kit.add_check("positions", book.check)
    kit.spawn(lambda: snapshot_forever(book, quotes, settings.lake_uri, settings.pnl_snapshot_s,
                                       state.snapshots), "pnl-snapshots")
    yield state


app = create_app("pnl", settings=PnlSettings(), routers=[router],
                 lifespan=lifespan)
