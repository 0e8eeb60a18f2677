"""The order request (parsed straight from the raw body) and the order record.

The record is the contract's Order and what the OMS keeps beside it, a Struct from the
request to Valkey and back (`oms:order:{id}` is its JSON: services/oms/store.py's
scripts set the few fields they change in that text, so its field names are the format).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, TypeVar

import msgspec
import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from services import contract
from services.kit.ledger import DEFAULT_ACCOUNT
from services.kit.names import Name, Symbol

__all__ = ["Accepted", "OrderRecord", "OrderRequest", "OrderView", "Problem", "decode_record", "new_order"]

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


class OrderView(contract.Order, kw_only=True):
    """An order as the OMS shows it (answers, GET /orders): the contract's Order, and the
    quantity a cancel left unfilled."""

    cancelled_quantity: float | None = None


class Accepted(OrderView, kw_only=True):
    """The 201 answer: the order, how long the OMS took, and `result`."""

    latency_ms: float
    result: contract.OrderResult = contract.OrderResult.ACCEPTED


S = TypeVar("S", bound=msgspec.Struct)


def _as(kind: type[S], source: msgspec.Struct, **changes: object) -> S:
    """A `kind` with the fields `source` has of it (a copy into a narrower or wider Struct)."""
    fields = {f: getattr(source, f) for f in kind.__struct_fields__ if hasattr(source, f)}
    return kind(**{**fields, **changes})


class OrderRecord(OrderView, kw_only=True):
    """`oms:order:{id}`: the view, and the ids of the fills applied to it (a fill delivered
    again changes nothing: services/oms/lifecycle.py)."""

    fill_ids: list[str] = msgspec.field(default_factory=list)

    def view(self) -> OrderView:
        return _as(OrderView, self)

    def order(self) -> contract.Order:
        """The contract's Order (what `orders.new` carries), without the OMS's own fields."""
        return _as(contract.Order, self)

    def accepted(self, latency_ms: float) -> Accepted:
        return _as(Accepted, self, latency_ms=latency_ms)


_record_decoder = msgspec.json.Decoder(OrderRecord)


def decode_record(raw: bytes | str) -> OrderRecord:
    return _record_decoder.decode(raw)


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A 4xx/5xx answer: why, and `result`; the fields not set are left out."""

    detail: str
    errors: list[str] | None = None
    order_id: str | None = None
    order: OrderView | None = None
    result: contract.OrderResult | None = None


def new_order(req: OrderRequest, order_id: str, now: float) -> OrderRecord:
    """A new order, PENDING (services/oms/entry.py moves it on)."""
    return OrderRecord(order_id=order_id, client_order_id=req.client_order_id, account=req.account,
                       symbol=req.symbol, side=req.side, quantity=req.quantity,
                       order_type=req.order_type, price=req.price, time_in_force=req.time_in_force,
                       status="PENDING", created_ts=now, updated_ts=now)
