"""gateway: random-walk quotes for the universe, published as ticks and alt-data events."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

from services.gateway.handlers import router
from services.gateway.market import Market
from services.gateway.publisher import alt_loop, tick_loop
from services.gateway.settings import GatewaySettings
from services.kit import Kit, create_app

__all__ = ["app"]


settings = GatewaySettings()
market = Market(settings.universe, settings.volatility, random.Random(settings.seed))


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[Market]:
    kit.spawn(lambda: tick_loop(market, kit.js, settings.tick_hz, kit.metrics), "ticks")
    kit.spawn(lambda: alt_loop(market, kit.js, settings.alt_interval_s, kit.metrics), "alt")
    yield market


app = create_app("gateway", settings=settings, routers=[router], lifespan=lifespan)
