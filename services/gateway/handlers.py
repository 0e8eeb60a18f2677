"""gateway routes: the live tickers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.market import Market
from services.kit import service_state
from services.kit.jsonresp import JSONResponse

__all__ = ["router"]

router = APIRouter()


def _market(request: Request) -> Market:
    return service_state(request, Market)


class Ticker(BaseModel):
    """The seed's ticker fields first, then ours (more may be added)."""

    model_config = ConfigDict(extra="allow")

    symbol: str
    last_price: float
    bid: float
    ask: float
    volume_24h: float
    change_24h: float
    timestamp: str = Field(description="ISO-8601, UTC")
    last: float
    mid: float
    spread: float
    seq: int
    ts: float = Field(description="epoch milliseconds")


# The answers are encoded as built (orjson), not validated through the Ticker model on
# every request: the model is the documented schema (OpenAPI), the code builds the dicts.
@router.get("/tickers", responses={200: {"model": list[Ticker]}})
async def tickers(request: Request) -> Response:
    """Every symbol's ticker, as the seed answers it: a JSON list."""
    return JSONResponse([q.ticker() for q in _market(request).quotes.values()])


@router.get("/ticker/{symbol}", responses={200: {"model": Ticker}, 404: {"description": "unknown symbol"}})
async def ticker(symbol: str, request: Request) -> Response:
    market = _market(request)
    quote = market.get(symbol)
    if quote is None:
        known = ", ".join(market.quotes)
        return JSONResponse(status_code=404,
                            content={"detail": f"unknown symbol {symbol!r}; known symbols: {known}"})
    return JSONResponse(quote.ticker())


@router.get("/symbols")
async def symbols(request: Request) -> Response:
    return JSONResponse({"symbols": list(_market(request).quotes)})
