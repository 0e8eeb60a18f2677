"""The order path on real NATS and Valkey: orders.new -> exeq -> live-gateway -> fills ->
ptrc and pnl. Ticks and orders are hand-built and published here, so nothing depends on
the gateway or the oms; every test has its own symbol, account and order ids.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import msgspec
import nats
import orjson
import pytest
import redis.asyncio as aioredis

from services import provision as topology
from services.contract import now_ms
from services.kit import bus
from services.oms.gate import serve_gate
from services.oms.models import OrderRecord
from services.oms.store import OrderStore
from tests.bus_helpers import send
from tests.helpers import Proc, start_service

pytestmark = pytest.mark.process

NAMES = ("exeq", "live-gateway", "ptrc", "pnl")
SKEWED = {"exeq": {"TRADE_OPS_CLOCK_OFFSET_S": "15"}, "live-gateway": {"TRADE_OPS_CLOCK_OFFSET_S": "-15"}}
Event = dict[str, Any]


class Stack:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        with ThreadPoolExecutor(len(NAMES)) as pool:
            self.procs = dict(zip(NAMES, pool.map(self._start, NAMES), strict=True))

    def _start(self, name: str) -> Proc:
        # The router's and the venue's clocks are skewed (15 s either way): what they compare
        # (a PENDING order's expiry, an order's age) is judged by Valkey's clock alone.
        return start_service(name, self.workdir, {**self.env, **SKEWED.get(name, {})})

    def url(self, name: str) -> str:
        return self.procs[name].url

    def restart(self, name: str) -> None:
        self.procs[name].stop()
        self.procs[name] = self._start(name)

    def stop(self) -> None:
        with ThreadPoolExecutor(len(NAMES)) as pool:
            list(pool.map(Proc.stop, self.procs.values()))


@pytest.fixture(scope="module")
def stack(valkey_server: Proc, nats_server: Proc, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("order-path")
    s = Stack(workdir, {"TRADE_OPS_VALKEY_URL": valkey_server.url, "TRADE_OPS_NATS_URL": nats_server.url,
                        "TRADE_OPS_LAKE_URI": str(workdir / "lake"), "TRADE_OPS_LOG_LEVEL": "warning"})
    yield s
    s.stop()


class Bus:
    """Publishes hand-built ticks and orders; records every exec.* event it sees."""

    def __init__(self, url: str, valkey_url: str) -> None:
        self.url = url
        # exeq routes an order only when the OMS's record says ACCEPTED: orders sent here
        # are recorded so, as the OMS would have done before they were routed.
        self.orders = OrderStore(aioredis.from_url(valkey_url))
        self.seen: list[tuple[str, Event]] = []
        self.symbol = "T" + uuid.uuid4().hex[:8].upper()
        self.account = "acct-" + uuid.uuid4().hex[:8]
        self.seq = 0

    async def __aenter__(self) -> Bus:
        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await topology.ensure_streams(self.js, list(bus.STREAMS))
        await self.nc.subscribe("exec.>", cb=self._on)
        await serve_gate(self.nc, self.orders)  # the OMS's answer to exeq, from the records written here
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.close()
        await self.orders.valkey.aclose()

    async def _on(self, msg: Any) -> None:
        self.seen.append((msg.subject, orjson.loads(msg.data)))

    async def tick(self, bid: float, ask: float, size: float = 0.0) -> None:
        self.seq += 1
        await send(self.js, f"market.tick.{self.symbol}", {
            "id": f"{self.symbol}-{self.seq}", "symbol": self.symbol, "seq": self.seq, "bid": bid,
            "ask": ask, "last": bid, "bid_size": size, "ask_size": size, "volume": 0, "ts": now_ms()})

    async def order(self, side: str, quantity: float, order_type: str = "MARKET",
                    price: float | None = None, tif: str = "GTC", msg_id: str | None = None,
                    age_s: float = 0.0) -> str:
        oid = "ord-" + uuid.uuid4().hex[:12]
        await self.send_order(oid, side, quantity, order_type, price, tif, msg_id, age_s)
        return oid

    async def send_order(self, oid: str, side: str, quantity: float, order_type: str,
                         price: float | None, tif: str, msg_id: str | None = None,
                         age_s: float = 0.0) -> None:
        """`age_s`: the order reaches the router that long after it was created (a redelivery)."""
        record = msgspec.convert({
            "order_id": oid, "account": self.account, "symbol": self.symbol, "side": side,
            "quantity": quantity, "order_type": order_type, "price": price, "time_in_force": tif,
            "status": "ACCEPTED", "created_ts": now_ms()}, OrderRecord)
        await self.orders.create(record)
        record.created_ts -= age_s * 1000
        order = msgspec.to_builtins(record.order())
        await send(self.js, "orders.new", {"id": oid, "ts": now_ms(), "order": order}, event_id=msg_id)

    async def cancel(self, oid: str) -> None:
        await send(self.js, "orders.cancel", {
            "id": f"cancel-{oid}", "ts": now_ms(), "order_id": oid, "account": self.account,
            "symbol": self.symbol})

    def events(self, oid: str, kind: str = "fill") -> list[Event]:
        prefix = "exec.fill." if kind == "fill" else "exec.cancelled"
        return [e for s, e in self.seen if s.startswith(prefix) and e["order_id"] == oid]

    async def until(self, what: Callable[[], Any], timeout: float = 10.0) -> Any:
        for _ in range(int(timeout / 0.02)):
            if result := what():
                return result
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition never met; events seen: {self.seen[-5:]}")


async def get_until(url: str, pred: Callable[[Any], bool], params: dict[str, str] | None = None,
                    timeout: float = 10.0) -> Any:
    last: Any = None
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(int(timeout / 0.03)):
            r = await client.get(url, params=params)
            last = (r.status_code, r.text)
            if r.status_code == 200 and pred(r.json()):
                return r.json()
            await asyncio.sleep(0.03)
    raise AssertionError(f"{url}: condition never met; last answer {last}")


async def quote(stack: Stack, b: Bus, bid: float, ask: float, size: float = 0.0) -> None:
    """Tick, and wait until the venue holds the quote (ticks and orders take other paths)."""
    await b.tick(bid, ask, size)
    await get_until(stack.url("live-gateway") + "/quotes",
                    lambda d: any(q["symbol"] == b.symbol and q["bid"] == bid for q in d["quotes"]))


async def resting(stack: Stack, b: Bus, oid: str) -> None:
    await get_until(stack.url("live-gateway") + "/book",
                    lambda d: any(o["order"]["order_id"] == oid for o in d["orders"]),
                    {"symbol": b.symbol, "account": b.account})  # the book is scoped by account


async def test_market_orders_fill_at_the_quote(stack: Stack, nats_server: Proc) -> None:
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 100.0, 100.5)
        buy, sell = await b.order("buy", 2), await b.order("sell", 0.5)
        [fb] = await b.until(lambda: b.events(buy))
        [fs] = await b.until(lambda: b.events(sell))
    assert (fb["price"], fb["quantity"], fb["final"], fb["leaves_quantity"]) == (100.5, 2, True, 0)
    assert (fs["price"], fs["quantity"], fs["final"]) == (100.0, 0.5, True)
    assert fb["fill_id"] == fb["id"] == f"{buy}-1" and fb["account"] == b.account


async def test_limit_rests_until_a_tick_crosses(stack: Stack, nats_server: Proc) -> None:
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 100.0, 101.0)
        rest = await b.order("buy", 1, "LIMIT", 99.0)
        marketable = await b.order("buy", 1, "LIMIT", 105.0)
        [fm] = await b.until(lambda: b.events(marketable))
        await resting(stack, b, rest)
        assert b.events(rest) == []
        await b.tick(98.0, 98.75)  # crosses the 99 limit: fills at the ask
        [fr] = await b.until(lambda: b.events(rest))
    assert fm["price"] == 101.0  # marketable on arrival: at the quote, not the limit
    assert (fr["price"], fr["quantity"], fr["final"]) == (98.75, 1, True)


async def test_ioc_fills_what_is_shown_and_cancels_the_rest(stack: Stack, nats_server: Proc) -> None:
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 50.0, 50.25, size=1.5)
        ioc = await b.order("buy", 4, "LIMIT", 51.0, tif="IOC")
        [cancelled] = await b.until(lambda: b.events(ioc, "cancelled"))
        [fill] = b.events(ioc)
        never = await b.order("sell", 1, "LIMIT", 60.0, tif="IOC")  # not marketable at all
        [none] = await b.until(lambda: b.events(never, "cancelled"))
    assert (fill["quantity"], fill["price"], fill["final"]) == (1.5, 50.25, True)
    assert cancelled["cancelled_quantity"] == 2.5 and "IOC" in cancelled["reason"]
    assert none["cancelled_quantity"] == 1 and b.events(never) == []


async def test_a_stale_market_or_ioc_order_is_cancelled_not_filled(stack: Stack, nats_server: Proc) -> None:
    """66 MARKET IOC orders filled 30 s after their 201 (redelivered after a crash), at
    whatever the price was then: past max_order_age_s (5 s) the venue cancels them."""
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 100.0, 100.5, size=100)
        market = await b.order("buy", 1, age_s=30)
        ioc = await b.order("sell", 1, "LIMIT", 90.0, tif="IOC", age_s=30)
        fresh = await b.order("buy", 1, age_s=1)
        old_gtc = await b.order("buy", 1, "LIMIT", 101.0, age_s=30)  # a limit protects its price
        cancels = [await b.until(functools.partial(b.events, o, "cancelled")) for o in (market, ioc)]
        await b.until(lambda: b.events(fresh) and b.events(old_gtc))
    for [c] in cancels:
        assert c["reason"].startswith("stale:") and "max_order_age_s" in c["reason"], c
        assert c["cancelled_quantity"] == 1
    assert b.events(market) == [] and b.events(ioc) == []


async def test_cancel_of_a_resting_order(stack: Stack, nats_server: Proc) -> None:
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 10.0, 10.5)
        oid = await b.order("sell", 3, "LIMIT", 12.0)
        await resting(stack, b, oid)
        await b.cancel(oid)
        [c] = await b.until(lambda: b.events(oid, "cancelled"))
        state = httpx.get(f"{stack.url('live-gateway')}/orders/{oid}", params={"account": b.account}).json()
        await quote(stack, b, 12.5, 13.0)  # would have crossed: the cancelled order is gone
    assert c["cancelled_quantity"] == 3 and c["account"] == b.account
    assert state["status"] == "CANCELLED" and state["filled"] == 0 and b.events(oid) == []
    assert httpx.get(f"{stack.url('live-gateway')}/orders/nope").status_code == 404


async def test_a_redelivered_order_fills_once(stack: Stack, nats_server: Proc) -> None:
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 20.0, 20.5)
        oid = await b.order("buy", 1, msg_id="first")
        # The same order again under another message id, as after the duplicate window.
        await b.send_order(oid, "buy", 1, "MARKET", None, "GTC", msg_id="again")
        await send(b.js, "orders.new", {"id": "junk-" + oid, "order": {"side": "buy"}})
        barrier = await b.order("buy", 1)  # routed and worked after both copies (and the junk)
        await b.until(lambda: b.events(barrier))
    assert [f["fill_id"] for f in b.events(oid)] == [f"{oid}-1"]


async def test_resting_orders_survive_a_venue_restart(stack: Stack, nats_server: Proc) -> None:
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 30.0, 30.5)
        oid = await b.order("buy", 2, "LIMIT", 29.0)
        await resting(stack, b, oid)
        await asyncio.to_thread(stack.restart, "live-gateway")
        await resting(stack, b, oid)
        await b.tick(28.5, 29.0)
        [fill] = await b.until(lambda: b.events(oid))
    assert (fill["price"], fill["quantity"]) == (29.0, 2)


async def test_positions_and_pnl_to_the_cent(stack: Stack, nats_server: Proc) -> None:
    """Buy 2 at 100.50, buy 1 at 99.00 (limit), sell 1 at 101.25, mark at mid 101.50:
    3 @ 100.00 -> 2 @ 100.00, realized (101.25 - 100) * 1 = 1.25,
    unrealized (101.50 - 100) * 2 = 3.00, total 4.25."""
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 100.0, 100.5)
        first = await b.order("buy", 2)
        await b.until(lambda: b.events(first))
        limit = await b.order("buy", 1, "LIMIT", 99.0)
        await resting(stack, b, limit)
        await b.tick(98.5, 99.0)
        await b.until(lambda: b.events(limit))
        await quote(stack, b, 101.25, 101.75)
        sell = await b.order("sell", 1)
        await b.until(lambda: b.events(sell))
        params = {"account": b.account}
        pos = await get_until(stack.url("ptrc") + "/positions",
                              lambda d: len(d["positions"]) == 1 and d["positions"][0]["quantity"] == 2,
                              params)
        trades = await get_until(stack.url("ptrc") + "/trades", lambda d: d["count"] == 3, params)
        pnl = await get_until(stack.url("pnl") + "/pnl",
                              lambda d: d["symbols"] and d["symbols"][0]["quantity"] == 2
                              and d["symbols"][0]["mark"] == 101.5, params)
    [p] = pos["positions"]
    assert p["symbol"] == b.symbol and p["avg_price"] == pytest.approx(100.0, abs=0.005)
    assert p["realized"] == pytest.approx(1.25, abs=0.005)
    assert [(t["side"], t["quantity"], t["price"]) for t in trades["trades"]] == [
        ("buy", 2, 100.5), ("buy", 1, 99.0), ("sell", 1, 101.25)]
    [row] = pnl["symbols"]
    assert row["realized"] == pytest.approx(1.25, abs=0.005)
    assert row["unrealized"] == pytest.approx(3.00, abs=0.005)
    assert pnl["total"] == pytest.approx(4.25, abs=0.005)


@pytest.mark.parametrize("path", ["/positions", "/trades", "/pnl"])
@pytest.mark.parametrize("params", [{"account": ""}, {"account": "  "}])  # none: the default account
def test_bad_account_is_422_with_a_reason(stack: Stack, path: str, params: dict[str, str]) -> None:
    url = stack.url("pnl" if path == "/pnl" else "ptrc") + path
    r = httpx.get(url, params=params)
    assert r.status_code == 422 and "account" in r.json()["detail"]


def test_every_service_is_healthy(stack: Stack) -> None:
    for name in NAMES:
        r = httpx.get(stack.url(name) + "/health", timeout=5)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["status"] in ("pass", "warn"), (name, r.text)


def _fills_published(stack: Stack) -> float:
    text = httpx.get(stack.url("live-gateway") + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("venue_fills_total"))


async def test_acked_events_leave_the_outbox_without_being_published_again(
        stack: Stack, nats_server: Proc) -> None:
    """An event JetStream acked leaves the outbox with the venue's next save or flush (not a
    round trip of its own): the flush never publishes it a second time, and the outbox drains."""
    async with Bus(nats_server.url, stack.env["TRADE_OPS_VALKEY_URL"]) as b:
        await quote(stack, b, 40.0, 40.5)
        before = await asyncio.to_thread(_fills_published, stack)
        first = await b.order("buy", 1)
        await b.until(lambda: b.events(first))
        second = await b.order("sell", 1)  # its save takes the first fill out of the outbox
        await b.until(lambda: b.events(second))
        await asyncio.sleep(1.5)  # a periodic flush (outbox_flush_s 1 s) runs meanwhile
        outbox = await b.orders.valkey.hlen("venue:outbox")
        after = await asyncio.to_thread(_fills_published, stack)
    assert outbox == 0
    assert after - before == 2  # each fill published once
