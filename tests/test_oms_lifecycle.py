"""Order state from fills and cancels (pure), and the order request's validation."""

from __future__ import annotations

import msgspec
import pytest
from pydantic import ValidationError

from services.contract import Cancelled, Fill
from services.oms.lifecycle import apply_cancel, apply_fill
from services.oms.models import OrderRecord, OrderRequest, decode_record, new_order

pytestmark = pytest.mark.unit


def order(quantity: float = 3.0) -> OrderRecord:
    req = OrderRequest(symbol="BTCUSDT", side="buy", quantity=quantity, order_type="MARKET")
    o = new_order(req, "o1", 0.0)
    o.status = "ACCEPTED"
    return o


def fill(fill_id: str, qty: float, price: float, leaves: float) -> Fill:
    return Fill(id=fill_id, fill_id=fill_id, order_id="o1", symbol="BTCUSDT", side="buy", quantity=qty,
                price=price, leaves_quantity=leaves, final=leaves == 0)


def test_partial_then_full_fill_with_average_price() -> None:
    o = order()
    assert apply_fill(o, fill("f1", 1.0, 100.0, 2.0), 1.0)
    assert (o.status, o.filled_quantity, o.avg_fill_price) == ("PARTIALLY_FILLED", 1.0, 100.0)
    assert not apply_fill(o, fill("f1", 1.0, 100.0, 2.0), 2.0)  # redelivered: no change
    assert o.filled_quantity == 1.0
    assert apply_fill(o, fill("f2", 2.0, 103.0, 0.0), 3.0)
    assert o.status == "FILLED"
    assert o.filled_quantity == 3.0
    assert o.avg_fill_price == pytest.approx(102.0)


def test_cancel_is_idempotent_and_never_undoes_a_fill() -> None:
    o = order()
    apply_fill(o, fill("f1", 1.0, 100.0, 2.0), 1.0)
    assert apply_cancel(o, Cancelled(id="c", order_id="o1", cancelled_quantity=2.0, reason="user"), 2.0)
    assert (o.status, o.cancelled_quantity) == ("CANCELLED", 2.0)
    assert not apply_cancel(o, Cancelled(id="c", order_id="o1"), 3.0)
    filled = order()
    apply_fill(filled, fill("f9", 3.0, 100.0, 0.0), 1.0)
    assert not apply_cancel(filled, Cancelled(id="c", order_id="o1"), 2.0)
    assert filled.status == "FILLED"


def test_same_request_same_digest_whatever_the_spelling() -> None:
    a = OrderRequest.model_validate_json(b'{"symbol":"btcusdt","side":"buy","quantity":1,"price":5}')
    b = OrderRequest.model_validate_json(
        b'{ "price": 5.0, "quantity": 1.0, "side": "buy", "symbol": "BTCUSDT", "order_type": "LIMIT" }')
    c = OrderRequest.model_validate_json(b'{"symbol":"BTCUSDT","side":"buy","quantity":2,"price":5}')
    assert a.digest() == b.digest() != c.digest()


@pytest.mark.parametrize("body", [
    b'{"side":"buy","quantity":1,"price":5}',
    b'{"symbol":"BTCUSDT","side":"buy","quantity":1}',  # LIMIT without a price
    b'{"symbol":"BTCUSDT","side":"buy","quantity":1,"order_type":"MARKET","price":5}',
    b'{"symbol":"BTCUSDT","side":"hold","quantity":1,"price":5}',
    b'{"symbol":"BTCUSDT","side":"buy","quantity":"lots","price":5}',
    b'{"symbol":"BTCUSDT","side":"buy","quantity":1e300,"price":5}',
    b'{"symbol":"BTCUSDT","side":"buy","quantity":1,"price":-5}',
    b'{"symbol":"BTC USDT","side":"buy","quantity":1,"price":5}',
    b'{"symbol":"BTCUSDT","side":"buy","quantity":1,"price":5,"colour":"red"}',
    b'[1,2]',
    b'{"symbol":',
])
def test_bad_requests_are_refused(body: bytes) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate_json(body)


def test_a_record_written_before_the_records_were_typed_still_reads() -> None:
    """oms:order:{id} as the dict-based OMS wrote it (no fill ids before a fill, an int
    quantity) decodes as the record; the record keeps those keys, so it reads the other way."""
    import orjson

    old: dict[str, object] = {
        "order_id": "o1", "client_order_id": None, "account": "a", "symbol": "X", "side": "buy",
        "quantity": 2, "order_type": "MARKET", "price": None, "time_in_force": "GTC",
        "status": "ACCEPTED", "filled_quantity": 0.0, "avg_fill_price": None, "risk_level": "LOW",
        "warnings": [], "reason": None, "created_ts": 1.5, "updated_ts": 1.5, "arrival_mid": 9.5}
    record = decode_record(orjson.dumps(old))
    assert (record.quantity, record.fill_ids, record.arrival_mid) == (2.0, [], 9.5)
    assert apply_fill(record, fill("f1", 2.0, 10.0, 0.0), 2.0) and record.status == "FILLED"
    written = orjson.loads(msgspec.json.encode(record))
    assert set(old) <= set(written) and written["fill_ids"] == ["f1"]
    assert "fill_ids" not in msgspec.json.encode(record.view()).decode()  # never in an answer
