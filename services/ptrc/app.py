"""ptrc: post-trade positions (quantity, average price) and the trade blotter per account.

The one position ledger: every position it changes is published on
`positions.{ACCOUNT}.{SYMBOL}` for pnl, hot-cache and risk (services/ptrc/publisher.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request, Response

from services.kit import Kit, KitSettings, create_app, service_state
from services.kit.auth import account_of
from services.kit.jsonresp import encoded
from services.kit.ledger import DEFAULT_ACCOUNT, Ledger, consume_fills, tidy
from services.kit.names import AccountQuery
from services.ptrc.publisher import SnapshotPublisher

__all__ = ["app"]


class PtrcSettings(KitSettings):
    service: str = "ptrc"


router = APIRouter()


def _ledger(request: Request) -> Ledger:
    return service_state(request, Ledger)


@router.get("/positions")
async def positions(request: Request, account: AccountQuery = DEFAULT_ACCOUNT) -> dict[str, object]:
    account = account_of(request, account)
    held = await _ledger(request).positions(account)
    return {"account": account,
            "positions": [{"symbol": s, **{k: tidy(v) for k, v in p.to_json().items()}}
                          for s, p in held.items()]}


@router.get("/trades")
async def trades(request: Request, account: AccountQuery = DEFAULT_ACCOUNT,
                 limit: int = Query(1000, ge=1, le=100_000)) -> Response:
    """The blotter, oldest first: the last `limit` trades and the total count."""
    account = account_of(request, account)
    count, rows = await _ledger(request).trades(account, limit)
    return encoded({"account": account, "count": count, "trades": rows})


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[Ledger]:
    ledger = Ledger(kit.valkey, "ptrc")
    publisher = SnapshotPublisher(kit.js)
    js, batch = kit.js, kit.settings.consumer_batch

    async def run() -> None:
        await publisher.load(ledger)
        if "ptrc-snapshots" not in kit.task_health:  # run() is restarted if it dies: one publisher
            kit.spawn(publisher.retry_forever, "ptrc-snapshots")
        await consume_fills(js, ledger, batch, publisher.changed)

    kit.spawn(lambda: run(), "ptrc-fills")
    yield ledger


app = create_app("ptrc", settings=PtrcSettings(), routers=[router],
                 lifespan=lifespan)
