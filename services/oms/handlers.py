"""oms routes: POST /orders (the hot path), GET /orders/{id}, GET /orders, DELETE /orders/{id}."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from services import contract
from services.kit import bus, get_kit, service_state
from services.kit.auth import ALL_ACCOUNTS, AccountScope, bearer
from services.kit.jsonresp import JSONResponse, encoded
from services.kit.names import Account, Name
from services.oms.entry import OrderEntry, cancel_event
from services.oms.models import OrderRecord, OrderRequest, OrderView, Problem
from services.oms.state import OmsState
from services.oms.store import OrderStore

__all__ = ["router"]

router = APIRouter()

OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


async def place_for(scope: AccountScope, entry: OrderEntry, authorization: str | bytes | None,
                    body: bytes) -> tuple[int, bytes]:
    """POST /orders for whoever the Authorization header says (checked only with account
    tokens on, so a loopback stack pays nothing for it)."""
    if not scope.enforce_tokens:
        return await entry.place(body)
    try:
        account = scope.token_account(bearer(authorization))
    except HTTPException as exc:
        return exc.status_code, orjson.dumps({"detail": exc.detail})
    return await entry.place(body, account)


class OrderAnswer(BaseModel):
    """201: the order as stored (ACCEPTED), with how long the OMS took and `result`."""

    model_config = ConfigDict(extra="allow")

    order_id: str
    client_order_id: str | None
    account: str
    symbol: str
    side: contract.Side
    quantity: float
    order_type: contract.OrderType
    price: float | None
    time_in_force: contract.TimeInForce
    status: contract.OrderStatus
    risk_level: str
    warnings: list[str]
    arrival_mid: float | None = None  # the mid when risk checked it (TCA's arrival price)
    latency_ms: float | None = None
    result: contract.OrderResult


class OrderProblem(BaseModel):
    """4xx/503: why, and `result` (rejected, invalid, conflict, unavailable)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    result: contract.OrderResult
    order: dict[str, Any] | None = None


@router.post("/orders", status_code=201, response_model=OrderAnswer, responses={
    409: {"model": OrderProblem, "description": "client_order_id reused with another body"},
    422: {"model": OrderProblem, "description": "invalid, or rejected by risk (recorded)"},
    503: {"model": OrderProblem, "description": "a dependency is down (fail closed)"}})
async def place_order(order: OrderRequest, request: Request) -> Response:
    """Place an order. In the running service OrdersFastPath (fastpath.py) answers this
    route before the FastAPI stack, parsing the body once in OrderEntry; this handler
    documents it (request and answer schemas) and serves an app without the wrapper."""
    state = service_state(request, OmsState)
    status, body = await place_for(state.scope, state.entry,
                                   request.headers.get("authorization"), await request.body())
    return Response(body, status_code=status, media_type="application/json")


def _store(request: Request) -> OrderStore:
    return service_state(request, OmsState).store


def _not_found(order_id: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": f"no order {order_id!r}"})


class OrderList(msgspec.Struct, kw_only=True, omit_defaults=True):
    """GET /orders: newest first; `in_flight` only for a client_order_id whose first request
    has no record yet."""

    orders: list[OrderView]
    count: int
    in_flight: bool | None = None



def _caller(request: Request) -> str | None:
    return service_state(request, OmsState).scope.caller(request)


async def _visible_order(request: Request, order_id: str) -> OrderRecord | None:
    """The order, if the caller's account may see it: another account's is not found."""
    caller = _caller(request)
    order = await _store(request).current(order_id)
    if order is None or (caller is not ALL_ACCOUNTS and order.account != caller):
        return None
    return order


@router.get("/orders/{order_id}")
async def get_order(order_id: OrderId, request: Request) -> Any:
    order = await _visible_order(request, order_id)
    # a Response, so FastAPI does not walk the order again (jsonable_encoder) before encoding it
    return encoded(order.view()) if order is not None else _not_found(order_id)


@router.get("/orders")
async def list_orders(request: Request,
                      account: Account | None = None,
                      status: contract.OrderStatus | None = None,
                      client_order_id: Name | None = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    caller = _caller(request)
    if caller is not ALL_ACCOUNTS:
        account = caller  # only the caller's own orders, whatever the query names
    store = _store(request)
    if client_order_id is not None:
        # Account-scoped: the client order id is the account's own name for its order.
        holder = await store.holder(account or "default", client_order_id)
        order_id = holder.partition(":")[2] if holder else None
        order = await store.current(order_id) if order_id else None
        found = [order.view()] if order is not None and status in (None, order.status) else []
        return encoded(OrderList(orders=found, count=len(found),
                                  in_flight=order_id is not None and order is None))
    orders = await store.list(account, status, limit)
    return encoded(OrderList(orders=[o.view() for o in orders], count=len(orders)))


@router.delete("/orders/{order_id}")
async def cancel_order(order_id: OrderId, request: Request) -> Any:
    kit = get_kit(request)
    order = await _visible_order(request, order_id)
    if order is None:
        return _not_found(order_id)
    if order.status in contract.TERMINAL_STATUSES or order.status == "PENDING":
        return encoded(Problem(detail=f"order {order_id} is {order.status}: nothing to cancel",
                                order=order.view()), 409)
    await bus.publish_event(kit.js, contract.ORDERS_CANCEL, cancel_event(order))
    return JSONResponse(status_code=202, content={"order_id": order_id, "cancel_requested": True,
                                                  "status": order.status})
