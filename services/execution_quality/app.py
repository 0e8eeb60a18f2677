"""execution-quality: TCA per symbol, slippage against the arrival mid and fill latency.

    GET /tca[?symbol=]   per symbol: fills, slippage (bps, qty-weighted, p50, p95, worst),
                         order-to-fill latency percentiles (ms)
    GET /tca/mids        each symbol's latest mid (what risk gives an order arriving now)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from services.execution_quality import consumers, store
from services.execution_quality.tca import summarize
from services.kit import FollowerSettings, Kit, create_app, get_kit, service_state
from services.kit.names import Symbol
from services.kit.quotes import QuoteBook

__all__ = ["TCASettings", "app"]



class TCASettings(FollowerSettings):
    service: str = "execution-quality"
    tca_max_samples: int = 10_000  # fill records kept per symbol


router = APIRouter()


@router.get("/tca")
async def tca(request: Request,
              symbol: Symbol | None = None) -> dict[str, Any]:
    kit = get_kit(request)
    known = await store.symbols(kit.valkey)
    if symbol is not None:
        symbol = symbol.upper()
        if symbol not in known:
            raise HTTPException(404, f"unknown symbol {symbol!r}: no fills measured for it")
        known = [symbol]
    quotes = service_state(request, QuoteBook)
    result = {}
    for name in known:
        quote = quotes.get(name)
        result[name] = {"mid": quote.mid if quote else None,
                        **summarize(await store.load_fills(kit.valkey, name))}
    return {"symbols": result}


@router.get("/tca/mids")
async def current_mids(request: Request) -> dict[str, Any]:
    quotes = service_state(request, QuoteBook)
    return {"mids": {symbol: quotes.quotes[symbol].mid for symbol in sorted(quotes.quotes)}}


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[QuoteBook]:
    settings = kit.settings_as(TCASettings)
    quotes = QuoteBook()
    await consumers.start(kit, quotes, settings.tca_max_samples)
    yield quotes


app = create_app("execution-quality", settings=TCASettings(), routers=[router], lifespan=lifespan)
