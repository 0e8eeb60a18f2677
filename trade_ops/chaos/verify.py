"""What `trade-ops chaos` checks after the faults, from every place an order leaves a trace.

For the chaos account (its own, so earlier runs do not count) it reads: the OMS (each
client_order_id's order), the ORDERS and EXEC streams (orders.new, fills), ptrc (the
trade blotter and positions) and the lake (`orders`, `fills`), and checks the promises:

    lost                an order answered 201 that is not readable or not in the orders
                        stream, or that the OMS says filled with no fill on the EXEC stream
    unsettled           an order answered 201 not terminal yet, or not yet in the lake, or
                        a fill not yet in ptrc or the lake, when the settle window ended
    traded-after-error  a fill of an order that was never answered 201 (its request got a
                        4xx, a 503, or no answer and no 201 on retry)
    duplicated          a fill applied twice anywhere (OMS filled quantity, ptrc blotter or
                        position, lake rows), or two orders traded for one client_order_id
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import orjson
from nats.js.api import ConsumerConfig, DeliverPolicy

from services import contract
from trade_ops.chaos.result import Examples

__all__ = ["Evidence", "Verdict", "gather", "judge", "read_stream"]

TERMINAL = {"FILLED", "CANCELLED", "REJECTED"}
EXAMPLES = 5
EPS = 1e-9


async def read_stream(nats_url: str, stream: str, subject: str, since_s: float,
                      login: dict[str, str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Every message on `subject` stored since `since_s` (epoch seconds), oldest first.
    `login`: the CLI's own NATS user (credentials.nats_login) on a stack with credentials."""
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=2, **(login or {}))
    out: list[tuple[str, dict[str, Any]]] = []
    try:
        js = nc.jetstream()
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                opt_start_time=datetime.fromtimestamp(since_s, UTC))
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True, config=config)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=2.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                with contextlib.suppress(ValueError):
                    out.append((msg.subject, orjson.loads(msg.data)))
                if msg.metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    finally:
        await nc.close()
    return out


@dataclass
class Evidence:
    """What was gathered after the run, keyed for the checks."""

    orders: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # coid -> OMS order
    published: dict[str, str] = field(default_factory=dict)  # order_id -> coid (orders.new)
    fills: list[dict[str, Any]] = field(default_factory=list)  # exec.fill.* of the account
    ptrc_trades: list[dict[str, Any]] | None = None
    ptrc_positions: dict[str, float] | None = None
    lake_orders: set[str] | None = None  # order ids with a `new` row
    lake_fill_rows: Counter[str] | None = None  # fill_id -> rows


async def _oms_orders(oms_url: str, account: str, coids: list[str], headers: dict[str, str]
                      ) -> dict[str, dict[str, Any] | None]:
    found: dict[str, dict[str, Any] | None] = {}
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=oms_url, timeout=10, headers=headers) as client:
        async def one(coid: str) -> None:
            async with gate:
                resp = await client.get("/orders", params={"account": account, "client_order_id": coid})
                orders = resp.json().get("orders", []) if resp.status_code == 200 else []
                found[coid] = orders[0] if orders else None

        await asyncio.gather(*(one(c) for c in coids))
    return found


def _lake(lake_uri: str, account: str) -> tuple[set[str] | None, Counter[str] | None]:
    from deltalake import DeltaTable

    from services.kit import lake

    orders: set[str] | None = None
    fills: Counter[str] | None = None
    if lake.table_exists(lake_uri, contract.ORDERS_TABLE):
        t = DeltaTable(lake.table_uri(lake_uri, contract.ORDERS_TABLE)).to_pyarrow_table(
            columns=["order_id", "event_type", "account"])
        orders = {r["order_id"] for r in t.to_pylist()
                  if r["account"] == account and r["event_type"] == "new"}
    if lake.table_exists(lake_uri, contract.FILLS_TABLE):
        t = DeltaTable(lake.table_uri(lake_uri, contract.FILLS_TABLE)).to_pyarrow_table(
            columns=["fill_id", "account"])
        fills = Counter(r["fill_id"] for r in t.to_pylist() if r["account"] == account)
    return orders, fills


async def gather(*, oms_url: str, ptrc_url: str | None, nats_url: str, lake_uri: str | None,
                 account: str, coids: list[str], since_s: float,
                 nats_login: dict[str, str] | None = None, headers: dict[str, str] | None = None
                 ) -> Evidence:
    ev = Evidence()
    ev.orders = await _oms_orders(oms_url, account, coids, headers or {})  # headers: the operator's
    new_orders = await read_stream(nats_url, contract.ORDERS, contract.ORDERS_NEW, since_s, nats_login)
    for _subject, event in new_orders:
        order = event.get("order") or {}
        if order.get("account") == account:
            ev.published[str(order.get("order_id"))] = str(order.get("client_order_id"))
    ev.fills = [e for s, e in await read_stream(nats_url, contract.EXEC, contract.FILL_ALL, since_s,
                                                          nats_login)
                if e.get("account") == account]
    if ptrc_url:
        async with httpx.AsyncClient(base_url=ptrc_url, timeout=10, headers=headers or {}) as client:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                trades = (await client.get("/trades", params={"account": account, "limit": 100_000})).json()
                ev.ptrc_trades = trades.get("trades")
                held = (await client.get("/positions", params={"account": account})).json()
                ev.ptrc_positions = {p["symbol"]: float(p.get("quantity", p.get("net_quantity", 0)))
                                     for p in held.get("positions", [])}
    if lake_uri:
        ev.lake_orders, ev.lake_fill_rows = await asyncio.to_thread(_lake, lake_uri, account)
    return ev


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    traded_after_error: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def settled(self) -> bool:  # every accepted order terminal and everywhere
        return not self.unsettled

    @property
    def safe(self) -> bool:
        """Nothing acknowledged missing, nothing traded after an error, nothing twice."""
        return not (self.lost or self.traded_after_error or self.duplicated)

    @property
    def passed(self) -> bool:
        return self.safe and self.settled

    def examples(self) -> Examples:
        return Examples(lost=self.lost[:EXAMPLES], unsettled=self.unsettled[:EXAMPLES],
                        traded_after_error=self.traded_after_error[:EXAMPLES],
                        duplicated=self.duplicated[:EXAMPLES])


def _signed(side: str, qty: float) -> float:
    return qty if side == "buy" else -qty


def judge(ev: Evidence, answers: dict[str, int]) -> Verdict:
    """`answers`: coid -> the final HTTP status it got (0: no answer)."""
    v = Verdict()
    accepted = {c for c, code in answers.items() if code == 201}
    accepted_ids = {o["order_id"]: c for c, o in ev.orders.items() if c in accepted and o}
    unique_fills: dict[str, dict[str, Any]] = {}
    for f in ev.fills:
        unique_fills.setdefault(str(f.get("fill_id") or f.get("id")), f)
    repeats = len(ev.fills) - len(unique_fills)
    if repeats:
        v.notes.append(f"{repeats} fill(s) published more than once on the EXEC stream "
                       "(must be dropped downstream)")
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in unique_fills.values():
        by_order[str(f["order_id"])].append(f)

    # lost: every 201 readable, published, terminal, in the lake, its fills everywhere
    for coid in sorted(accepted):
        order = ev.orders.get(coid)
        if order is None:
            v.lost.append(f"{coid}: answered 201, GET /orders?client_order_id= finds nothing")
            continue
        oid = order["order_id"]
        if oid not in ev.published:
            v.lost.append(f"{coid} ({oid}): answered 201, not in the orders stream")
        if order["status"] not in TERMINAL:
            v.unsettled.append(f"{coid} ({oid}): answered 201, still {order['status']}")
        if order["filled_quantity"] > EPS and not by_order.get(oid):
            v.lost.append(f"{coid} ({oid}): OMS says filled {order['filled_quantity']:g}, no fill on EXEC")
        if ev.lake_orders is not None and oid not in ev.lake_orders:
            v.unsettled.append(f"{coid} ({oid}): answered 201, not in the lake's orders table")

    # traded-after-error: a fill of any order that was not answered 201
    for oid, fills in by_order.items():
        if oid in accepted_ids:
            continue
        coid = ev.published.get(oid) or str(fills[0].get("client_order_id"))
        code = answers.get(coid)
        v.traded_after_error.append(f"{coid} ({oid}): answered {code or 'nothing'}, "
                                    f"yet {len(fills)} fill(s)")

    # duplicated: the same fill applied twice, or one client order id traded twice
    for oid, coid in accepted_ids.items():
        order = ev.orders[coid]
        assert order is not None
        total = sum(float(f["quantity"]) for f in by_order.get(oid, ()))
        if order["filled_quantity"] > total + EPS:
            v.duplicated.append(f"{coid} ({oid}): OMS filled {order['filled_quantity']:g} > fills {total:g}")
        if order["filled_quantity"] > order["quantity"] + EPS:
            v.duplicated.append(f"{coid} ({oid}): filled {order['filled_quantity']:g} "
                                f"of {order['quantity']:g}")
    traded_coids = Counter(ev.published.get(oid, "?") for oid in by_order)
    v.duplicated += [f"{coid}: {n} orders traded for one client_order_id"
                     for coid, n in traded_coids.items() if n > 1 and coid != "?"]
    if ev.lake_fill_rows is not None:
        v.duplicated += [f"fill {fid}: {n} rows in the lake" for fid, n in ev.lake_fill_rows.items() if n > 1]
        missing = [fid for fid in unique_fills if fid not in ev.lake_fill_rows]
        v.unsettled += [f"fill {fid}: not in the lake's fills table" for fid in missing]
    in_step = True  # ptrc has applied exactly the fills read from the stream
    if ev.ptrc_trades is not None:
        seen = Counter(str(t.get("fill_id")) for t in ev.ptrc_trades)
        v.duplicated += [f"fill {fid}: {n} times in ptrc's blotter" for fid, n in seen.items() if n > 1]
        missing = [fid for fid in unique_fills if fid not in seen]
        v.unsettled += [f"fill {fid}: not in ptrc's blotter" for fid in missing]
        in_step = not missing and set(seen) <= set(unique_fills)
    if ev.ptrc_positions is not None and in_step:  # else a difference is lag, not a double
        expected: dict[str, float] = defaultdict(float)
        for f in unique_fills.values():
            expected[str(f["symbol"])] += _signed(str(f["side"]), float(f["quantity"]))
        for symbol in set(expected) | set(ev.ptrc_positions):
            got, want = ev.ptrc_positions.get(symbol, 0.0), expected.get(symbol, 0.0)
            if abs(got - want) > 1e-6:
                v.duplicated.append(f"ptrc position {symbol}: {got:g}, the fills add up to {want:g}")
    return v
