"""The contract's Structs are the types on the bus and in the lake: each round-trips through
encode/decode and through its lake table's schema (property tests over generated values);
a table's schema follows its Struct; the kit's decode counts and drops what does not decode."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client
from nats.aio.msg import Msg

from services import contract
from services.event_writer.app import FILLS, ORDERS, exec_row, order_row
from services.kit import bus, lake
from services.sink_alt.app import ALT_EVENTS, alt_row
from services.sink_ticks.app import MARKET_TICKS, tick_row

pytestmark = pytest.mark.unit

PAYLOADS: list[Any] = [f.payload for f in contract.FAMILIES.values()] + [contract.RiskCheckReply]



def strategy(info: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """Values of one contract field, from msgspec's own view of the type and its constraints
    (JSON has no NaN or infinity: msgspec writes them as null)."""
    match info:
        case msgspec.inspect.StrType(pattern=str(pattern)):
            return st.from_regex(pattern)
        case msgspec.inspect.StrType(min_length=low, max_length=high):
            return st.text(min_size=low or 0, max_size=min(high or 12, 12))
        case msgspec.inspect.BoolType():
            return st.booleans()
        case msgspec.inspect.IntType():
            return st.integers(-(2**63), 2**63 - 1)
        case msgspec.inspect.FloatType(gt=gt, ge=ge, lt=lt, le=le):
            return st.floats(min_value=gt if gt is not None else ge, max_value=lt if lt is not None else le,
                             exclude_min=gt is not None, exclude_max=lt is not None,
                             allow_nan=False, allow_infinity=False)
        case msgspec.inspect.LiteralType(values=values):
            return st.sampled_from(values)
        case msgspec.inspect.NoneType():
            return st.none()
        case msgspec.inspect.ListType(item_type=item):
            return st.lists(strategy(item), max_size=3)
        case msgspec.inspect.UnionType(types=kinds):
            return st.one_of(*(strategy(k) for k in kinds))
        case msgspec.inspect.StructType(cls=cls, fields=fields):
            return st.builds(cls, **{f.name: strategy(f.type) for f in fields})
    raise TypeError(f"no strategy for {info!r}")


def instances(payload: Any) -> st.SearchStrategy[Any]:
    return strategy(msgspec.inspect.type_info(payload))


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: getattr(p, "__name__", "VenueOrder"))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_struct_round_trips_through_encode_and_decode(payload: Any, data: st.DataObject) -> None:
    value = data.draw(instances(payload))
    decoded = (contract.decode_venue_order(contract.encode(value)) if isinstance(payload, types.UnionType)
               else contract.decode(contract.encode(value), payload))
    assert decoded == value


# Each lake table, the payloads it holds, and its row function (the sinks' own).
LAKE = [(MARKET_TICKS, contract.Tick, tick_row, contract.TICK_ALL),
        (ALT_EVENTS, contract.AltEvent, alt_row, "alt.news.X"),
        (FILLS, contract.Fill, exec_row, "exec.fill.X"),
        (ORDERS, contract.OrderNew, order_row, contract.ORDERS_NEW),
        (ORDERS, contract.Cancel, order_row, contract.ORDERS_CANCEL),
        (ORDERS, contract.Cancelled, exec_row, contract.EXEC_CANCELLED)]


@pytest.mark.parametrize(("table", "payload", "route", "subject"), LAKE,
                         ids=lambda v: getattr(v, "__name__", "") or getattr(v, "name", ""))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_struct_round_trips_through_its_lake_schema(table: Any, payload: Any, route: Any, subject: str,
                                                         data: st.DataObject) -> None:
    value = msgspec.structs.replace(data.draw(instances(payload)),  # a time with a date to partition by
                                    ts=data.draw(st.floats(0, 4e12)))
    if isinstance(value, contract.Fill):  # the contract's rule: a fill's event id is its fill_id
        value = msgspec.structs.replace(value, id=value.fill_id)
    routed = route(subject, value)
    assert routed is not None and routed[0] == table.name
    row = routed[1]
    assert set(row) <= set(table.schema.names), set(row) - set(table.schema.names)
    back = pa.Table.from_pylist([row], schema=table.schema).to_pylist()[0]
    assert {k: back[k] for k in row} == row
    if isinstance(value, contract.Fill | contract.Tick | contract.AltEvent):  # a row is the event again
        fields = {k: v for k, v in back.items() if k in payload.__struct_fields__}
        event_id = back["id"] if "id" in back else back["fill_id"]
        assert msgspec.convert({**fields, "id": event_id}, payload) == value


def test_every_field_of_a_fill_is_a_column_of_the_fills_table() -> None:
    columns = set(FILLS.schema.names)
    assert set(contract.Fill.__struct_fields__) - {"id"} <= columns
    assert FILLS.schema.field("arrival_mid").type == pa.float64()  # it was missing: TCA's arrival price
    assert set(contract.Order.__struct_fields__) <= set(ORDERS.schema.names)


class FillWithFee(contract.Fill, kw_only=True):
    """A fill as a later version of the contract might have it: one field more."""

    fee: float | None = None


def test_a_field_added_to_a_struct_is_a_column_of_its_table(tmp_path: Path) -> None:
    before = lake.schema_of(contract.Fill, drop=("id",), extra=[("date", pa.string())])
    after = lake.schema_of(FillWithFee, drop=("id",), extra=[("date", pa.string())])
    assert set(after.names) - set(before.names) == {"fee"}
    assert after.field("fee").type == pa.float64()
    # A table written before the field existed takes rows with it: the column is added.
    appender = lake.Appender(str(tmp_path))
    old = contract.Fill(id="f1", fill_id="f1", order_id="o", symbol="X", side="buy", quantity=1, price=2)
    new = FillWithFee(id="f2", fill_id="f2", order_id="o", symbol="X", side="sell", quantity=1, price=3,
                      fee=0.01)
    for schema, fill in ((before, old), (after, new)):
        row = {**msgspec.structs.asdict(fill), "date": "2026-01-01"}
        del row["id"]
        appender.append("fills", pa.Table.from_pylist([row], schema=schema))
    rows = DeltaTable(lake.table_uri(str(tmp_path), "fills")).to_pyarrow_table().to_pylist()
    assert sorted((r["fill_id"], r["fee"]) for r in rows) == [("f1", None), ("f2", 0.01)]


def test_a_type_the_lake_cannot_hold_is_said() -> None:
    class Odd(msgspec.Struct):
        when: dict[str, int]

    with pytest.raises(TypeError, match="no lake column type"):
        lake.schema_of(Odd)


def _msg(subject: str, data: bytes) -> Msg:
    """A NATS message as a subscription hands it over (of an unconnected client: none is acked)."""
    return Msg(_client=Client(), subject=subject, data=data)


def test_the_kit_decodes_into_the_struct_and_counts_what_does_not_decode() -> None:
    fill = contract.Fill(id="f", fill_id="f", order_id="o", symbol="X", side="buy", quantity=1, price=2)
    good = _msg(contract.fill_subject("X"), contract.encode(fill))
    assert bus.decode(good, contract.Fill) == fill
    assert bus.decode_execution(good) == fill
    assert bus.decode_payload(good) == fill
    before = bus.MALFORMED["fill"]
    bad = [_msg(contract.fill_subject("X"), b'{"id": "f", "quantity": "lots"}'),
           _msg(contract.fill_subject("X"), b"not json")]
    with pytest.raises(bus.Malformed, match=r"exec\.fill\.X"):
        bus.decode(bad[0], contract.Fill)
    assert bus.decode_each([bad[1], good], contract.Fill) == [(good, fill)]
    assert bus.MALFORMED["fill"] == before + 2



def test_the_pnl_table_is_its_struct() -> None:
    from services.pnl.snapshot import pnl_schema

    assert pnl_schema().names == [*contract.PnlRow.__struct_fields__, "ts", "date"]
