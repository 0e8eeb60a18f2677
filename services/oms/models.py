"""The order request (parsed straight from the raw body) and the order record."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services import contract
from services.kit.ledger import DEFAULT_ACCOUNT
from services.kit.names import Name, Symbol

__all__ = ["OrderRequest", "new_order", "public"]

MAX_QUANTITY = 1e9
MAX_PRICE = 1e12



def _cased(convert: str) -> BeforeValidator:
    """Accept any case ("BUY", "Market", "gtc"); keep the contract's one (side lower, types upper)."""
    return BeforeValidator(lambda v: getattr(v, convert)() if isinstance(v, str) else v)




class OrderRequest(BaseModel):
    # No whitespace stripping: "abc\n" is not the client order id "abc", it is invalid.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    account: Name = DEFAULT_ACCOUNT
    symbol: Symbol
    side: Annotated[contract.Side, _cased("lower")]
    # strict: a number, never true (1.0) or "0.1"
    quantity: Annotated[float, Field(gt=0, le=MAX_QUANTITY, strict=True)]
    order_type: Annotated[contract.OrderType, _cased("upper")] = "LIMIT"
    price: Annotated[float | None, Field(gt=0, le=MAX_PRICE, strict=True)] = None
    time_in_force: Annotated[contract.TimeInForce, _cased("upper")] = "GTC"
    client_order_id: Name | None = None

    @model_validator(mode="after")
    def _price_matches_type(self) -> OrderRequest:
        if self.order_type == "LIMIT" and self.price is None:
            raise ValueError("price is required for a LIMIT order")
        if self.order_type == "MARKET" and self.price is not None:
            raise ValueError("price must be omitted for a MARKET order (it fills at the quote)")
        return self

    def digest(self) -> str:
        """Identity of the request for idempotency: same fields, same digest (key order,
        whitespace and defaults spelled out or not do not matter)."""
        canon = orjson.dumps(self.model_dump(), option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(canon, digest_size=12).hexdigest()

    def risk_payload(self, order_id: str | None = None) -> bytes:
        """The risk check; with the order's id, an approval reserves it as working."""
        return contract.encode(contract.RiskCheckRequest(
            account=self.account, symbol=self.symbol, side=self.side, quantity=self.quantity,
            price=self.price, order_id=order_id))


def new_order(req: OrderRequest, order_id: str, now: float, status: contract.OrderStatus, risk_level: str,
              warnings: list[str], reason: str | None) -> dict[str, Any]:
    return {"order_id": order_id, "client_order_id": req.client_order_id, "account": req.account,
            "symbol": req.symbol, "side": req.side, "quantity": req.quantity,
            "order_type": req.order_type, "price": req.price, "time_in_force": req.time_in_force,
            "status": status, "filled_quantity": 0.0, "avg_fill_price": None,
            "risk_level": risk_level, "warnings": warnings, "reason": reason,
            "created_ts": now, "updated_ts": now, "arrival_mid": None}


def public(order: dict[str, Any]) -> dict[str, Any]:
    """The order as events and answers show it (without the applied fill ids)."""
    return {k: v for k, v in order.items() if k != "fill_ids"}
