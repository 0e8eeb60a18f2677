"""hot-cache: one low-latency read API over the latest tickers, bars, positions and P&L.

    GET /snapshot?account=&symbols=A,B   served from memory; `symbols` narrows the
                                         tickers and bars, positions are the account's all

Three ordered consumers keep the view fresh: ticks and bars start from the last message
of each subject, fills from the start of the EXEC stream, so a restart rebuilds every
position. Until that replay has caught up, `warm` is false and /health says warn.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from nats.aio.msg import Msg

from services import contract
from services.contract import now_ms
from services.hot_cache.view import View
from services.kit import Check, Kit, KitSettings, create_app, get_kit
from services.kit.follow import DeliverPolicy, follow, last_sequence

__all__ = ["HotCacheSettings", "app"]

ACCOUNT_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
SYMBOLS_PATTERN = r"^[A-Za-z0-9._-]{1,32}(,[A-Za-z0-9._-]{1,32})*$"



class HotCacheSettings(KitSettings):
    service: str = "hot-cache"
    port: int = 8088


router = APIRouter()


@router.get("/snapshot")
async def snapshot(request: Request,
                   account: str = Query("default", pattern=ACCOUNT_PATTERN),
                   symbols: str | None = Query(None, pattern=SYMBOLS_PATTERN,
                                               description="comma-separated, e.g. AAPL,MSFT")
                   ) -> dict[str, Any]:
    kit = get_kit(request)
    view: View = kit.state["view"]
    wanted = None
    if symbols is not None:
        wanted = {s.upper() for s in symbols.split(",")}
        unknown = sorted(wanted - view.known_symbols())
        if unknown:
            raise HTTPException(404, f"unknown symbol(s) {', '.join(unknown)}: no ticks or bars seen")
    return {"ts": now_ms(), "warm": kit.state["warm"], **view.snapshot(account, wanted)}


async def _replay_check(kit: Kit) -> Check:
    view: View = kit.state["view"]
    if kit.state["warm"]:
        return Check("positions", "replay", "pass", "component", view.fills_applied, "fills")
    return Check("positions", "replay", "warn", "component", view.fills_applied, "fills",
                 output="replaying fills from the EXEC stream: positions are not complete yet")


@contextlib.asynccontextmanager
async def _lifespan(kit: Kit) -> AsyncIterator[None]:
    assert kit.js is not None
    view = kit.state["view"] = View()
    kit.state["warm"] = await last_sequence(kit.js, contract.EXEC) == 0

    def on_fill(fill: dict[str, Any], msg: Msg) -> None:
        if contract.is_fill(msg.subject):
            view.apply_fill(fill)
        if msg.metadata.num_pending == 0:  # the replay reached the end of the stream
            kit.state["warm"] = True

    # Every exec.> message, not only fills: the replay is done at the stream's last message.
    await follow(kit.js, contract.EXEC_ALL, on_fill, DeliverPolicy.ALL)
    await follow(kit.js, contract.TICK_ALL, lambda t, _: view.apply_tick(t),
                 DeliverPolicy.LAST_PER_SUBJECT)
    await follow(kit.js, contract.BAR_ALL, lambda b, _: view.apply_bar(b),
                 DeliverPolicy.LAST_PER_SUBJECT)
    kit.add_check("positions", lambda: _replay_check(kit))
    yield


app = create_app("hot-cache", settings=HotCacheSettings(), routers=[router],
                 lifespan=_lifespan)
