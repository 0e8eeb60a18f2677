"""live-gateway: the paper venue. Fills MARKET orders at the quote, rests LIMIT orders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import Field

from services.contract import TOPOLOGY
from services.kit import Check, Kit, KitSettings, create_app, service_state
from services.kit.auth import account_of, may_see
from services.kit.bus import VENUE_LINGER_S, durable_consumer
from services.kit.jsonresp import encoded
from services.live_gateway.store import VenueStore
from services.live_gateway.venue import Venue

__all__ = ["VenueSettings", "app"]


class VenueSettings(KitSettings):
    service: str = "live-gateway"
    # /health warns when no tick arrived for this long: resting orders cannot fill, and a
    # MARKET or IOC order arriving then is cancelled, not filled at the stopped quote.
    quote_stale_s: float = 10.0
    outbox_flush_s: float = 1.0
    # A MARKET or IOC order older than this when it arrives is cancelled unfilled
    # (TRADE_OPS_MAX_ORDER_AGE_S): one redelivered after a crash would trade at a price
    # seconds away from the one it was sent at.
    max_order_age_s: float = Field(5.0, gt=0)


router = APIRouter()


def _venue(request: Request) -> Venue:
    return service_state(request, Venue)


@router.get("/quotes")
async def quotes(request: Request) -> dict[str, object]:
    return {"quotes": [q.to_json() for q in _venue(request).quotes.quotes.values()]}


@router.get("/book")
async def book(request: Request, symbol: str | None = Query(None, min_length=1)) -> Response:
    """Resting orders, in time priority: the caller's account's (the operator: every one)."""
    venue = _venue(request)
    account = account_of(request, None)
    symbols = [symbol] if symbol else sorted(venue.book)
    return encoded({"orders": [VenueStore.describe(w) for s in symbols for w in venue.book.get(s, {}).values()
                                if account is None or w.order.account == account]})


@router.get("/orders/{order_id}")
async def order(request: Request, order_id: str) -> Response:
    w = await _venue(request).store.get(order_id)
    if w is None or not may_see(request, w.order.account):  # another account's: not found
        raise HTTPException(404, f"the venue never saw order {order_id!r}")
    return encoded(VenueStore.describe(w))


def _quote_check(venue: Venue, stale_s: float) -> Check:
    age = venue.quotes.age_s()
    if age is None:
        return Check("quotes", "age", "warn", "component", None, "s",
                     output="no tick received yet: orders wait for a quote")
    status: Literal["pass", "warn"] = "pass" if age <= stale_s else "warn"
    return Check("quotes", "age", status, "component", round(age, 3), "s",
                 output=f"no tick for {age:.1f}s (is the gateway publishing?)")


async def _flush_forever(venue: Venue, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        await venue.flush_outbox()


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[Venue]:
    settings = kit.settings_as(VenueSettings)
    venue = Venue(kit, settings.max_order_age_s, settings.quote_stale_s)
    await venue.start()
    kit.spawn(lambda: venue.quotes.follow(kit.js, "live-gateway", venue.on_quote), "venue-quotes")
    await venue.quotes.wait_ready()  # an order is worked against the latest quote, not none

    async def quote_check() -> Check:
        return _quote_check(venue, settings.quote_stale_s)

    kit.add_check("quotes", quote_check)
    kit.spawn(lambda: durable_consumer(kit.js, TOPOLOGY["live-gateway"].durable("live-gateway"),
                               handle_batch=venue.on_orders, linger=VENUE_LINGER_S),
               "venue-orders")
    kit.spawn(lambda: _flush_forever(venue, settings.outbox_flush_s), "venue-outbox")
    yield venue


app = create_app("live-gateway", settings=VenueSettings(), routers=[router], lifespan=lifespan)
