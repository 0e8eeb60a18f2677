"""feast-pipeline: online features per symbol from 1m bars, kept in Valkey.

A durable consumer on `market.bar.{interval}.>` stores each bar's window and writes
`features:{symbol}`; `GET /features/{symbol}` reads it back (404 for a symbol with no
bars), `GET /features` lists the symbols.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from nats.aio.msg import Msg

from services import contract
from services.feast_pipeline.features import compute_features
from services.feast_pipeline.store import SYMBOLS_KEY, add_bar, load_features, save_features
from services.kit import FollowerSettings, Kit, create_app, get_kit
from services.kit.bus import decode, durable_consumer
from services.kit.names import Symbol
from services.kit.text import text

__all__ = ["FeatureSettings", "app"]

log = logging.getLogger(__name__)



class FeatureSettings(FollowerSettings):
    service: str = "feast-pipeline"
    features_interval: str = "1m"
    features_window: int = 20  # bar returns in the rolling volatility and VWAP


router = APIRouter()


@router.get("/features")
async def list_symbols(request: Request) -> dict[str, Any]:
    kit = get_kit(request)
    members = await kit.valkey.smembers(SYMBOLS_KEY)
    return {"symbols": sorted(text(m) for m in members)}


@router.get("/features/{symbol}")
async def get_features(request: Request, symbol: Annotated[Symbol, Path()]) -> dict[str, Any]:
    kit = get_kit(request)
    features = await load_features(kit.valkey, symbol.upper())
    if features is None:
        raise HTTPException(404, f"unknown symbol {symbol.upper()!r}: no "
                                 f"{kit.settings_as(FeatureSettings).features_interval} bars seen for it")
    return features


async def _consume(kit: Kit) -> None:
    settings = kit.settings_as(FeatureSettings)
    valkey, window = kit.valkey, settings.features_window
    processed = kit.metrics.counter("feature_bars_total", "Bars turned into features", ("outcome",))

    async def handle(msg: Msg) -> None:
        bar = decode(msg, contract.Bar)  # a malformed one is counted and acked by the kit
        bars = await add_bar(valkey, bar, window)
        await save_features(valkey, compute_features(bars, window))
        processed.labels("ok").inc()

    # The operator's durable filters the contract's interval (1m): another one reads nothing.
    durable = contract.TOPOLOGY["feast-pipeline"].durable("feast-pipeline")
    if durable.subject != contract.bar_interval_wildcard(settings.features_interval):
        log.warning("features_interval %s: the durable %s reads %s", settings.features_interval,
                    durable.name, durable.subject)
    await durable_consumer(kit.js, durable, handle=handle)


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[None]:
    kit.spawn(lambda: _consume(kit), "bars-consumer")
    yield


app = create_app("feast-pipeline", settings=FeatureSettings(), routers=[router],
                 lifespan=lifespan)
