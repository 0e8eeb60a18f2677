"""gateway routes: the live tickers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.market import Market
from services.kit.jsonresp import JSONResponse

__all__ = ["router"]

router = APIRouter()


def _market(request: Request) -> Market:
    return request.app.state.kit.state["market"]


@router.get("/tickers")
async def tickers(request: Request) -> dict[str, Any]:
    market = _market(request)
    rows = [q.ticker() for q in market.quotes.values()]
    return {"tickers": rows, "count": len(rows)}


@router.get("/ticker/{symbol}")
async def ticker(symbol: str, request: Request) -> Any:
    market = _market(request)
    quote = market.get(symbol)
    if quote is None:
        known = ", ".join(market.quotes)
        return JSONResponse(status_code=404,
                            content={"detail": f"unknown symbol {symbol!r}; known symbols: {known}"})
    return quote.ticker()


@router.get("/symbols")
async def symbols(request: Request) -> Response:
    return JSONResponse({"symbols": list(_market(request).quotes)})
