"""Every payload every service publishes in a full lifecycle decodes with the contract, and
so does every row the lake sinks wrote of them.

A fresh NATS and Valkey; gateway (ticks, alt-data), normalizer (bars), risk, oms, exeq,
live-gateway and ptrc (position snapshots), and the sinks (sink-ticks, sink-alt,
event-writer). An order fills, another rests and is cancelled; then every message of every
stream is decoded as its family's payload, every family the topology says is published has
at least one message, and every lake row is its contract Struct again."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from services import contract
from services.kit import bus
from tests.bus_helpers import get_json_until, infra_env, publish
from tests.helpers import Proc, wait_until
from tests.orderpath import start
from tests.test_sink_kit import read_table

pytestmark = pytest.mark.process

SERVICES = ("gateway", "normalizer", "risk", "oms", "exeq", "live-gateway", "ptrc",
            "sink-ticks", "sink-alt", "event-writer")
T = TypeVar("T")
T0 = 1_700_000_000_000  # two hand-made ticks a minute apart close a 1m bar of CTRX


@pytest.fixture
def stack(fresh_valkey: Proc, fresh_nats: Proc, tmp_path: Path) -> Iterator[dict[str, httpx.Client]]:
    env = infra_env(fresh_valkey, fresh_nats, log_level="warning", alt_interval_s="0.2",
                    symbols="BTCUSDT,ETHUSDT", lake_uri=str(tmp_path / "lake"), sink_max_wait_s="0.2")
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        started = list(pool.map(lambda name: start(name, tmp_path, env), SERVICES))
    try:
        yield {name: client for name, (_, client) in zip(SERVICES, started, strict=True)}
    finally:
        with ThreadPoolExecutor(len(SERVICES)) as pool:
            list(pool.map(lambda pc: pc[0].stop(), started))


async def _every_message(url: str) -> list[tuple[str, bytes]]:
    nc = await bus.connect(url, "test-reader")
    try:
        js = nc.jetstream()
        found = []
        for stream in contract.STREAMS:
            info = await js.stream_info(stream)
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                if info.state.messages:
                    msg = await js.get_msg(stream, seq)
                    found.append((msg.subject or "", msg.data or b""))
        reply = await nc.request(contract.RISK_CHECK, contract.encode(contract.RiskCheckRequest(
            symbol="BTCUSDT", side="buy", quantity=0.001)), timeout=2)
        found.append(("risk.check reply", reply.data))
        return found
    finally:
        await nc.close()


@pytest.mark.timeout(120)
def test_every_published_payload_decodes(stack: dict[str, httpx.Client], fresh_nats: Proc,
                                         tmp_path: Path) -> None:
    publish(fresh_nats.url, [(contract.tick_subject("CTRX"), contract.Tick(
        id=f"CTRX-{n}", ts=T0 + n * 60_000, symbol="CTRX", seq=n, bid=9.0, ask=11.0, last=10.0))
        for n in (1, 2)])
    oms = stack["oms"]
    oms.headers["X-Account"] = "contract"  # orders are scoped by account
    get_json_until(f"{oms.base_url}/livez", lambda _: True)
    base = {"account": "contract", "symbol": "BTCUSDT", "quantity": 0.001}
    filled = oms.post("/orders", json={**base, "side": "buy", "order_type": "MARKET"})
    assert filled.status_code == 201, filled.text
    resting = oms.post("/orders", json={**base, "side": "buy", "price": 1.0})
    assert resting.status_code == 201, resting.text
    mine = {"account": "contract"}
    get_json_until(f"{oms.base_url}/orders/{filled.json()['order_id']}", lambda o: o["status"] == "FILLED",
                   params=mine)
    assert oms.delete(f"/orders/{resting.json()['order_id']}").status_code in (200, 202)
    get_json_until(f"{oms.base_url}/orders/{resting.json()['order_id']}",
                   lambda o: o["status"] == "CANCELLED", params=mine)
    get_json_until(f"{stack['ptrc'].base_url}/positions", lambda d: bool(d["positions"]),
                   params={"account": "contract"})

    seen: Counter[str] = Counter()
    deadline_families = {f for n in contract.TOPOLOGY.values() for f in n.publishes}
    for _ in range(50):  # bars and alt-data arrive on their own clock
        messages = asyncio.run(_every_message(fresh_nats.url))
        seen.clear()
        for subject, data in messages:
            if subject == "risk.check reply":
                contract.decode(data, contract.RiskCheckReply)
                seen["risk_check"] += 1
                continue
            family = contract.family_of(subject)
            try:
                if family.name == "venue_order":
                    kind = type(contract.decode_venue_order(data)).__name__
                    seen[kind] += 1
                else:
                    contract.decode(data, family.payload)
            except msgspec.ValidationError as exc:
                raise AssertionError(f"{subject}: {exc}: {data[:300]!r}") from None
            seen[family.name] += 1
        if deadline_families <= set(seen) and seen["VenueCancel"]:
            break
        asyncio.run(asyncio.sleep(0.2))
    assert deadline_families <= set(seen), f"families never published: {deadline_families - set(seen)}"
    assert seen["VenueNew"] == 2 and seen["VenueCancel"] == 1 and seen["risk_check"] == 1
    # TCA's arrival mid travels with the order: risk's mid at the check, on the OMS's answer,
    # on the order event and on every fill of it (execution-quality reads fills only).
    arrival = filled.json()["arrival_mid"]
    assert isinstance(arrival, float) and arrival > 0, filled.json()
    fills = [contract.decode(data, contract.Fill) for subject, data in messages
             if subject != "risk.check reply" and contract.family_of(subject).name == "fill"]
    assert fills and {f.arrival_mid for f in fills} == {arrival}, fills
    orders = [contract.decode(data, contract.OrderNew).order for subject, data in messages
              if subject == contract.ORDERS_NEW]
    assert {o.order_id: o.arrival_mid for o in orders}[filled.json()["order_id"]] == arrival
    _every_lake_row_decodes(str(tmp_path / "lake"), fills, orders)


# A lake row is its event's fields, with the table's own beside them.
_TABLE_COLUMNS = {"date", "_stream", "_seq", "subject", "event_id", "event_type"}


def _as(row: dict[str, Any], payload: type[T], **fixed: Any) -> T:
    fields = {k: v for k, v in row.items() if k not in _TABLE_COLUMNS and v is not None}
    return msgspec.convert({**fields, **fixed}, payload)


def _every_lake_row_decodes(lake_uri: str, fills: list[contract.Fill], orders: list[contract.Order]) -> None:
    def tables() -> dict[str, list[dict[str, Any]]]:
        found = {}
        for name in (contract.MARKET_TICKS, contract.ALT_EVENTS, contract.ORDERS_TABLE, contract.FILLS_TABLE):
            rows = read_table(lake_uri, name)
            found[name] = [] if rows is None else rows.to_pylist()
        return found

    wanted = {contract.FILLS_TABLE: len(fills), contract.ORDERS_TABLE: 4}  # 2 new, a cancel asked, done
    assert wait_until(lambda: all(len(rows) >= wanted.get(name, 1) for name, rows in tables().items()), 20)
    rows = tables()
    for row in rows[contract.MARKET_TICKS]:
        _as(row, contract.Tick)
    for row in rows[contract.ALT_EVENTS]:
        assert row["subject"] == contract.alt_subject(_as(row, contract.AltEvent).symbol)
    # A fill's row is the fill as it was published, every field of it (arrival_mid included).
    assert sorted((_as(r, contract.Fill, id=r["fill_id"]) for r in rows[contract.FILLS_TABLE]),
                  key=lambda f: f.fill_id) == sorted(fills, key=lambda f: f.fill_id)
    by_type: Counter[str] = Counter()
    for row in rows[contract.ORDERS_TABLE]:
        by_type[row["event_type"]] += 1
        if row["event_type"] == "new":
            assert _as(row, contract.Order) in orders
        elif row["event_type"] == "cancel_request":
            _as(row, contract.Cancel, id=row["event_id"])
        else:
            assert _as(row, contract.Cancelled, id=row["event_id"]).order_id in {o.order_id for o in orders}
    assert by_type == {"new": 2, "cancel_request": 1, "cancelled": 1}, by_type
