"""hot-cache: one low-latency read API over the latest tickers, bars, positions and P&L.

    GET /snapshot?account=&symbols=A,B   served from memory; `symbols` narrows the
                                         tickers and bars, positions are the account's all

Three followers keep the view fresh: ticks and bars start from the last message of each
subject, positions from ptrc's snapshots (the last per position), so a restart reads one
message per position, not the fills behind them. Until it has, `warm` is false and
/health says warn.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request
from nats.aio.msg import Msg

from services import contract
from services.contract import now_ms
from services.hot_cache.view import View
from services.kit import FollowerSettings, Kit, bus, create_app, service_state
from services.kit.auth import account_of
from services.kit.follow import follow
from services.kit.names import Account, Symbols

__all__ = ["HotCacheSettings", "app"]

log = logging.getLogger(__name__)
T = TypeVar("T")




class HotCacheSettings(FollowerSettings):
    service: str = "hot-cache"


router = APIRouter()


@router.get("/snapshot")
async def snapshot(request: Request,
                   account: Account = "default",
                   symbols: Annotated[Symbols | None,
                                      Query(description="comma-separated, e.g. AAPL,MSFT")] = None
                   ) -> dict[str, Any]:
    view = service_state(request, View)
    wanted = None
    if symbols is not None:
        wanted = {s.upper() for s in symbols.split(",")}
        unknown = sorted(wanted - view.known_symbols())
        if unknown:
            raise HTTPException(404, f"unknown symbol(s) {', '.join(unknown)}: no ticks or bars seen")
    return {"ts": now_ms(), "warm": view.positions.ready.is_set(),
            **view.snapshot(account_of(request, account), wanted)}


def _each(kind: type[T], apply: Callable[[T], None]) -> Callable[[list[Msg]], None]:
    """A batch handler that decodes each message as `kind` (the kit skips and counts a
    malformed one)."""

    def handle(msgs: list[Msg]) -> None:
        for _, payload in bus.decode_each(msgs, kind):
            apply(payload)

    return handle


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[View]:
    view = View()
    linger = bus.FOLLOW_LINGER_S  # a cache for readers; nothing on the order path waits on it
    kit.spawn(lambda: view.positions.follow(kit.js, "hot-cache", linger), "positions")
    kit.spawn(lambda: follow(kit.js, stream=contract.TICKS, subject=contract.TICK_ALL, latest=True,
                     handle=_each(contract.Tick, view.apply_tick), name="hot-cache-ticks", linger=linger),
              "ticks")
    kit.spawn(lambda: follow(kit.js, stream=contract.BARS, subject=contract.BAR_ALL, latest=True,
                     handle=_each(contract.Bar, view.apply_bar), name="hot-cache-bars", linger=linger),
              "bars")
    kit.add_check("positions", view.positions.check)
    yield view


app = create_app("hot-cache", settings=HotCacheSettings(), routers=[router],
                 lifespan=lifespan)
