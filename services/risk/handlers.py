"""risk routes: POST /check, GET /limits, the kill switch, GET /positions."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services import contract
from services.kit import get_kit, service_state
from services.kit.auth import account_of, require_operator
from services.kit.jsonresp import JSONResponse
from services.kit.names import Symbol
from services.risk.engine import RiskEngine
from services.risk.state import RiskState

__all__ = ["KILL_KEY", "router"]

router = APIRouter()
KILL_KEY = contract.HALTS_KEY  # hash: "*" (global) or a symbol -> reason
GLOBAL = "*"



class KillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol | None = None  # none: every symbol
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "set by operator"


def _engine(request: Request) -> RiskEngine:
    return service_state(request, RiskState).engine


# The body is decoded by the engine as the contract's Struct (the NATS transport shares it),
# so its schema and the answer's are the contract's, declared here for OpenAPI.
_, _SCHEMAS = msgspec.json.schema_components([contract.RiskCheckRequest, contract.RiskCheckReply],
                                             ref_template="#/components/schemas/{name}")
_CHECK_BODY = {"required": True, "content": {"application/json": {"schema": _SCHEMAS["RiskCheckRequest"]}}}
_CHECK_ANSWER = {"content": {"application/json": {"schema": _SCHEMAS["RiskCheckReply"]}}}


@router.post("/check", openapi_extra={"requestBody": _CHECK_BODY},
             responses={200: _CHECK_ANSWER, 422: {"description": "invalid request, with the reasons"}})
async def check(request: Request) -> Response:
    state = service_state(request, RiskState)
    invalid, answer = state.engine.decide_raw(await request.body())
    state.checks.labels(
        "http", "invalid" if invalid else "approved" if answer.approved else "rejected").inc()
    if invalid:
        return JSONResponse(status_code=422, content={"detail": answer.reason, "errors": invalid})
    return Response(contract.encode(answer), media_type="application/json")


@router.get("/limits")
async def limits(request: Request) -> dict[str, Any]:
    return _engine(request).limits.to_json()


@router.get("/kill-switch")
async def kill_state(request: Request) -> dict[str, Any]:
    return _engine(request).kill.to_json()


@router.post("/kill-switch", dependencies=[Depends(require_operator)])
async def kill_set(body: KillRequest, request: Request) -> Any:
    engine = _engine(request)
    if body.symbol is not None and not engine.known(body.symbol):
        return JSONResponse(status_code=422, content={"detail": f"unknown symbol {body.symbol!r}"})
    await get_kit(request).valkey.hset(KILL_KEY, body.symbol or GLOBAL, body.reason)
    if body.symbol is None:
        engine.kill.global_reason = body.reason
    else:
        engine.kill.symbols[body.symbol] = body.reason
    return engine.kill.to_json()


@router.delete("/kill-switch", dependencies=[Depends(require_operator)])
async def kill_clear(request: Request, symbol: Annotated[Symbol | None, Query()] = None) -> Any:
    engine = _engine(request)
    await get_kit(request).valkey.hdel(KILL_KEY, symbol or GLOBAL)
    if symbol is None:
        engine.kill.global_reason = None
    else:
        engine.kill.symbols.pop(symbol, None)
    return engine.kill.to_json()


@router.get("/working")
async def working(request: Request,
                  account: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    """Per account and symbol: the working buys and sells and their value, their count, and
    fills not yet in the position (what the position and exposure limits count beside it)."""
    return {"working": _engine(request).exposure.to_json(account)}


@router.get("/positions")
async def positions(request: Request,
                    account: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    return {"positions": _engine(request).book.positions_json(account_of(request, account))}


async def load_kill_switch(kit: Any, engine: RiskEngine) -> None:
    """Restore the kill switch saved in Valkey: a halt survives a restart of risk."""
    saved = await kit.valkey.hgetall(KILL_KEY)
    for field, reason in saved.items():
        name, text = field.decode(), reason.decode()
        if name == GLOBAL:
            engine.kill.global_reason = text
        else:
            engine.kill.symbols[name] = text
