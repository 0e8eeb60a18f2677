"""The OMS round trip: a small buy and the same sell on the doctor account, each read as
the OMS itself answers it, and nothing of doctor's left open afterwards.

Each answer is read through the deployment's order contract (trade_ops.order_contract):

    rejected   (REJECTED, RISK_REJECTED, `result: rejected`, ...) reported as a rejection
               with the OMS's reason, never followed for fills
    open       (ACCEPTED, SENT, ...) followed on GET /orders/{id} until FILLED or ended;
               an order that stays open names the stage where it stopped (fillpath.py)
    invalid    a 4xx: the body the OMS answered, and the [contracts.order] lines to state
               its contract (learnt from its validation answer when its schema says nothing)

Every order doctor sent is accounted for before the check ends: one still open is
cancelled (and the check says so); one whose request timed out or got a 5xx is looked
up afterwards (by client order id, else in the doctor account's listing) and cancelled if
the OMS placed it meanwhile. An order whose required fields doctor cannot fill safely (a
price with no quote to take it from) is not sent.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from trade_ops import identity, order_contract
from trade_ops.doctor.fillpath import Trail, stopped_at
from trade_ops.doctor.http import Answer, call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.order_contract import Contract, Reading, Verdict

__all__ = ["CONTRACT_HINT", "QTY", "SYMBOL", "contract_for", "listed", "live_price", "position_of",
           "round_trip"]

SYMBOL = "BTCUSDT"
QTY = 0.001
CONTRACT_HINT = ("the order doctor sent does not match this OMS's contract: "
                 "set [contracts.order] in the stack file")
LISTING_NOTE = ("looked up in the doctor account's listing by symbol, side and quantity: this OMS "
                "takes no client order id")
POLL_FIRST_S, POLL_MAX_S = 0.005, 0.025  # follow an open order closely, then a little less so


def _base(target: Target, name: str) -> str:
    return target.stack[name].base_url


async def contract_for(target: Target, http: httpx.AsyncClient, service: str, path: str) -> Contract:
    """What `POST path` of `service` reads: the stack file's [contracts.*], its OpenAPI, or ours."""
    table = target.stack.contracts.get("order" if service == "oms" else service)
    url = None if table is not None or (target.supervised and not target.explicit) else \
        _base(target, service) + "/openapi.json"
    doc = json_of((await call(http, "GET", url, target.timeout)).response) if url else None
    return order_contract.resolve(table, doc, path, url)


async def live_price(target: Target, http: httpx.AsyncClient) -> float | None:
    if not target.has("gateway"):
        return None
    answer = await call(http, "GET", f"{_base(target, 'gateway')}/ticker/{SYMBOL}", target.timeout)
    doc = json_of(answer.response)
    if not isinstance(doc, dict):
        return None
    value = next((doc[k] for k in ("ask", "last_price", "price", "last", "mid", "bid")
                  if isinstance(doc.get(k), int | float)), None)
    return float(value) if value else None


@dataclass
class Sent:
    """One order doctor sent, and what is known of it."""

    side: str
    client_id: str
    reading: Reading | None = None  # None: no answer (timed out, or a 5xx): maybe placed
    note: str = ""
    body: dict[str, Any] = field(default_factory=dict)  # as sent: what a listing is matched on

    @property
    def order_id(self) -> str | None:
        return self.reading.order_id if self.reading else None

    @property
    def open(self) -> bool:
        return self.reading is not None and self.reading.verdict == Verdict.ACCEPTED


def _operator_headers(target: Target) -> dict[str, str]:
    oms = target.component("oms")
    try:
        return identity.operator_headers_for(target.run_dir.path, oms) if oms is not None else {}
    except identity.Impostor:  # doctor's oms check names it
        return {}


class Orders:
    """doctor's orders on one OMS during one round trip."""

    def __init__(self, target: Target, http: httpx.AsyncClient, contract: Contract) -> None:
        self.target, self.http, self.contract = target, http, contract
        self.oms = _base(target, "oms")
        # As the operator when the stack has credentials (orders are scoped by account), and
        # only to the OMS trade-ops started (identity.py): an impostor gets no token.
        self.auth = _operator_headers(target)
        self.sent: list[Sent] = []

    def curl(self, method: str, path: str) -> str:
        return f"curl -sSf -m 5 -X {method} {shlex.quote(self.oms + path)}"

    async def _call(self, method: str, path: str, **kwargs: Any) -> Answer:
        return await call(self.http, method, self.oms + path, self.target.timeout, headers=self.auth,
                          **kwargs)

    async def place(self, fields: dict[str, Any]) -> tuple[Sent, str]:
        """POST one order: (what was sent, "" or why it did not go as it should)."""
        sent = Sent(fields["side"], f"doctor-{uuid.uuid4().hex[:16]}")
        sent.body = body = self.contract.body({**fields, "client_order_id": sent.client_id})
        self.sent.append(sent)
        answer = await self._call("POST", "/orders", json=body)
        what = f"POST /orders ({sent.side})"
        if answer.response is None:
            if not answer.timed_out:  # refused: nothing reached the OMS
                sent.reading = Reading(Verdict.ERROR, reason=answer.error)
            return sent, f"{what}: {answer.error}"
        code = answer.response.status_code
        sent.reading = reading = self.contract.read(code, json_of(answer.response))
        if reading.verdict == Verdict.ERROR:
            sent.reading = None  # a 5xx: the OMS may have placed it all the same (looked up later)
            return sent, f"{what}: HTTP {code} {answer.response.text[:200]}"
        if reading.verdict == Verdict.INVALID:
            return sent, (f"{what}: HTTP {code} {answer.response.text[:200]}; {CONTRACT_HINT}; "
                          f"doctor sent {json.dumps(body)} ({self.contract.describe()})")
        if reading.verdict == Verdict.ACCEPTED and reading.order_id is None:
            found = await self.look_up(sent)
            if found is None:
                sent.reading = Reading(Verdict.ERROR, reading.status, "no order id")
                return sent, (f"{what}: HTTP {code} {answer.response.text[:120]}: the answer names no "
                              "order id (nor does a lookup by client order id): nothing to follow")
        return sent, ""

    async def follow(self, sent: Sent, within: float, trail: Trail | None = None) -> bool:
        """Poll an open order until it is done or `within` seconds passed (sent.note says why
        polling stopped early: an OMS that does not show the order is not polled on); True when
        it stopped because the wire shows the order cannot fill (it was carried to a subject
        no one hears, and no further)."""
        deadline, pause = time.perf_counter() + within, POLL_FIRST_S
        while sent.open and time.perf_counter() < deadline:
            await asyncio.sleep(pause)
            pause = min(POLL_MAX_S, pause * 2)
            if trail is not None and await trail.dead_end(self.target, self.http, sent.client_id,
                                                          sent.order_id):
                return True
            answer = await self._call("GET", f"/orders/{sent.order_id}")
            doc = json_of(answer.response)
            if answer.response is None or answer.response.status_code != 200 or not isinstance(doc, dict):
                sent.note = f"GET /orders/{sent.order_id} answered {_said(answer)}: doctor stopped there"
                return False
            reading = self.contract.read(200, doc)
            sent.reading = Reading(reading.verdict, reading.status, reading.reason, sent.order_id,
                                   reading.order)
        return False

    async def look_up(self, sent: Sent, within: float = 0.0) -> Sent | None:
        """Find an order whose answer doctor did not get: by client order id where the OMS takes
        one, else in the doctor account's listing (an order of the same symbol, side and quantity
        that doctor does not know yet); retried for `within` seconds (an OMS that was suspended
        answers later)."""
        names = self.contract.names
        key = names.get("client_order_id")
        params = {**({key: sent.client_id} if key else {}),
                  **({names["account"]: self.target.account} if names.get("account") else {})}
        how = "" if key else f" ({LISTING_NOTE})"
        deadline = time.perf_counter() + within
        while True:
            answer = await self._call("GET", "/orders", params=params)
            doc = json_of(answer.response)
            if answer.response is not None and answer.response.status_code == 200:
                order = self._find(sent, listed(doc), key)
                if order is not None:
                    reading = self.contract.read(200, order)
                    sent.reading = Reading(reading.verdict, reading.status, reading.reason,
                                           reading.order_id, order)
                    return sent if reading.order_id else None
                # this project's OMS says `in_flight` while the order is being placed: ask again
                placing = isinstance(doc, dict) and bool(doc.get("in_flight"))
                if not placing or time.perf_counter() >= deadline:
                    sent.note = "the OMS was still placing it when doctor stopped asking" if placing else \
                        "the OMS does not list it: not placed" + how
                    return None
            elif time.perf_counter() >= deadline:
                sent.note = f"doctor could not look it up: GET /orders answered {_said(answer)}"
                return None
            await asyncio.sleep(0.1)

    def _find(self, sent: Sent, orders: list[dict[str, Any]], key: str | None) -> dict[str, Any] | None:
        if key:
            return next((o for o in orders if o.get(key) == sent.client_id), None)
        known = {s.order_id for s in self.sent if s.order_id}
        same = [k for k in (self.contract.names.get(n) for n in ("account", "symbol", "side", "quantity"))
                if k and k in sent.body]
        found = [o for o in orders if all(o.get(k) == sent.body[k] for k in same)
                 and self.contract.read(200, o).order_id not in known]
        return found[-1] if found else None  # the newest, as listings go

    async def settle(self, within: float) -> tuple[list[str], list[tuple[str, str]]]:
        """Account for every order sent: (what doctor did, [(what is left open, its remedy)])."""
        done: list[str] = []
        left: list[tuple[str, str]] = []
        for sent in self.sent:
            if sent.reading is None:
                found = await self.look_up(sent, within)
                if found is None:
                    done.append(f"{sent.side} order {sent.client_id} (no answer): {sent.note}")
                    continue
                done.append(f"{sent.side} order {sent.client_id} (no answer) was placed meanwhile as "
                            f"{sent.order_id} ({sent.reading.shown() if sent.reading else '?'})"
                            + ("" if self.contract.names.get("client_order_id") else f", {LISTING_NOTE}"))
            if not sent.open:
                continue
            was = sent.reading.shown() if sent.reading else "open"
            answer = await self._call("DELETE", f"/orders/{sent.order_id}")
            if answer.response is not None and answer.response.status_code < 300:
                done.append(f"doctor cancelled its {sent.side} order {sent.order_id} (it was {was})")
            else:
                cancel = self.curl("DELETE", f"/orders/{sent.order_id}")
                if answer.response is not None and answer.response.status_code in (404, 405, 501):
                    cancel = (f"manual step: cancel order {sent.order_id} on the OMS (it does not cancel "
                              f"on DELETE /orders/{{id}}: HTTP {answer.response.status_code})")
                left.append((f"doctor's {sent.side} order {sent.order_id} is still open ({was}): its cancel "
                             f"answered {_said(answer)}", cancel))
        return done, left


def _said(answer: Answer) -> str:
    if answer.response is None:
        return answer.error or "nothing"
    return f"HTTP {answer.response.status_code} {answer.response.text[:120]}".rstrip()


def listed(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict):
        doc = next((doc[k] for k in ("orders", "items", "data", "results") if isinstance(doc.get(k), list)),
                   [])
    return [o for o in doc if isinstance(o, dict)] if isinstance(doc, list) else []


async def _fields(target: Target, http: httpx.AsyncClient, contract: Contract, r: CheckResult,
                  ) -> dict[str, Any] | None:
    """The order's fields; None when a required one has no safe source (r says which, and how
    to give it)."""
    fields: dict[str, Any] = {"account": target.account, "symbol": SYMBOL, "quantity": QTY,
                              "order_type": "MARKET", "time_in_force": "IOC"}
    if contract.needs_price:  # no MARKET orders there: a marketable LIMIT at the live quote
        price = target.order.get("price") or contract.defaults.get("price") or await live_price(target, http)
        if not price:
            r.warn("not sent: this OMS requires `price` and doctor has no quote to take it from "
                   "(no gateway answered /ticker/" + SYMBOL + ")",
                   "manual step: give the price doctor may use: add --order price=VALUE to this command, "
                   "or `defaults = { price = VALUE }` under [contracts.order] in the stack file")
            r.data["missing"] = ["price"]
            return None
        fields.update(order_type="LIMIT", time_in_force="GTC", price=price)
    fields = {**fields, **target.order}
    missing = contract.missing(fields)
    if missing:
        r.warn(f"not sent: this OMS requires {', '.join(missing)}, which doctor cannot fill safely "
               f"({contract.describe()})",
               f"manual step: give {'them' if len(missing) > 1 else 'it'}: add "
               + " ".join(f"--order {m}=VALUE" for m in missing) + " to this command, or `defaults = { "
               + ", ".join(f"{m} = VALUE" for m in missing) + " }` under [contracts.order] in the stack file")
        r.data["missing"] = missing
        return None
    return fields


async def round_trip(target: Target, http: httpx.AsyncClient, trip: CheckResult,
                     books: CheckResult | None) -> None:
    """OMS round trip (trip) and, when ptrc and pnl run, positions and P&L reflecting it (books)."""
    started = time.perf_counter()
    contract = await contract_for(target, http, "oms", "/orders")
    trip.data["contract"] = contract.describe()
    if contract.statuses:
        trip.data["statuses"] = list(contract.statuses)
    fields = await _fields(target, http, contract, trip)
    orders = Orders(target, http, contract)
    filled = False
    # Where this order goes on the wire, on a deployment whose path trade-ops does not know.
    trail = await Trail.listen(target) if fields is not None and not target.supervised else None
    try:
        if fields is not None:
            before = await position(target, http) if books else None
            filled = await _buy(target, http, trip, orders, fields, trail)
            if filled and books is not None:
                await books_reflect(target, http, books, before)
            if filled:
                sell, why = await orders.place({**fields, "side": "sell"})
                await orders.follow(sell, 2 * target.timeout)
                if why or not sell.reading or sell.reading.verdict != Verdict.FILLED:
                    shown = why or sell.note or (sell.reading.shown() if sell.reading else "no answer")
                    trip.warn(f"flattening the doctor account failed: {shown}", target.logs_remedy("oms"))
                else:
                    trip.details.append("flat again: sell FILLED")
    finally:
        if trail is not None:
            await trail.close()
        done, left = await orders.settle(3 * target.timeout)
        trip.details += done
        for problem, remedy in left:  # an order of doctor's left open comes first: its cancel is the fix
            trip.fail(problem)
            trip.remedy = remedy
        if orders.sent:
            trip.data["orders"] = [{"side": s.side, "client_order_id": s.client_id, "order_id": s.order_id,
                                    "status": s.reading.status if s.reading else None} for s in orders.sent]
        trip.duration_ms = (time.perf_counter() - started) * 1000
        if books is not None and not filled:
            books.status = "skip"
            books.details.append("no fill to reflect")
            books.duration_ms = trip.duration_ms


async def _buy(target: Target, http: httpx.AsyncClient, trip: CheckResult, orders: Orders,
               fields: dict[str, Any], trail: Trail | None) -> bool:
    """The buy: True when FILLED; else trip says what the OMS answered, or where it stopped."""
    started = time.perf_counter()
    buy, why = await orders.place({**fields, "side": "buy"})
    if why and buy.reading is not None and buy.reading.verdict == Verdict.INVALID \
            and not orders.contract.described:
        learnt = order_contract.learn(orders.contract, why)
        if learnt is not None:  # the schema said nothing: the OMS's validation answer says what it reads
            orders.contract = learnt
            trip.data["contract"] = learnt.describe()
            buy, why = await orders.place({**fields, "side": "buy"})
    accepted_ms = (time.perf_counter() - started) * 1000
    if why:
        invalid = buy.reading is not None and buy.reading.verdict == Verdict.INVALID
        trip.fail(why, _contract_remedy(orders.contract) if invalid else target.logs_remedy("oms"))
        return False
    reading = buy.reading
    assert reading is not None
    if reading.verdict == Verdict.REJECTED:
        _rejected(trip, reading, "buy")
        return False
    dead_end = await orders.follow(buy, 2 * target.timeout, trail)
    reading = buy.reading or reading
    fill_ms = (time.perf_counter() - started) * 1000
    trip.data.update(order_id=buy.order_id, accepted_ms=round(accepted_ms, 1))
    if reading.verdict == Verdict.FILLED:
        trip.data.update(order_to_fill_ms=round(fill_ms, 1), fill_price=reading.order.get("avg_fill_price"))
        trip.summary = f"ACCEPTED in {accepted_ms:.0f} ms · FILLED in {fill_ms:.0f} ms"
        return True
    if reading.verdict == Verdict.REJECTED:
        _rejected(trip, reading, "buy")
    elif reading.verdict != Verdict.ACCEPTED:
        trip.fail(f"buy order {buy.order_id} ended {reading.shown()}", target.logs_remedy("oms"))
    elif buy.note:
        trip.fail(f"buy order {buy.order_id} was answered {reading.status}; {buy.note}",
                  orders.curl("GET", f"/orders/{buy.order_id}"))
    else:
        stage, component = await stopped_at(target, http, trail, buy.client_id, buy.order_id)
        trip.data["stage"] = stage
        after = "ACCEPTED" if reading.status == "ACCEPTED" else "its answer"
        waited = f"{2 * target.timeout:.1f}s after {after}" if not dead_end else \
            f"{fill_ms / 1000:.1f}s after it was sent, where the wire shows it stopped"
        trip.data["dead_end"] = dead_end
        trip.fail(f"buy order {buy.order_id} still {reading.status} {waited}: orders never fill: {stage}",
                  target.logs_remedy(component or "oms"))
        if component:
            trip.component = component
    return False


def _rejected(trip: CheckResult, reading: Reading, side: str) -> None:
    """A rejection is the OMS's verdict: its reason, never a fill path or a dependency's fault."""
    trip.needs = ()
    trip.rest_on("its own answer")
    trip.data["rejected"] = {"status": reading.status, "reason": reading.reason}
    trip.summary = f"REJECTED: {reading.shown()}"
    trip.fail(f"the OMS rejected doctor's {side} order ({reading.shown()}): it was not followed for fills",
              "manual step: see why the OMS (or its risk check) rejects a "
              f"{QTY:g} {SYMBOL} order: its reason is above")


def _contract_remedy(contract: Contract) -> str:
    return ("manual step: state this OMS's order contract in the stack file (--stack FILE), for example: "
            + order_contract.table_lines(contract).replace("\n", " / "))


# -- positions and P&L reflecting the fill --------------------------------------------------
_QTY_KEYS = ("quantity", "net_quantity", "position", "qty", "size")


def position_of(doc: Any, symbol: str) -> float | None:
    """The quantity held in `symbol`, from whatever shape a positions answer has."""
    if isinstance(doc, dict):
        if doc.get("symbol") == symbol:
            for key in _QTY_KEYS:
                if isinstance(doc.get(key), int | float):
                    return float(doc[key])
        if symbol in doc:
            inner = doc[symbol]
            if isinstance(inner, int | float):
                return float(inner)
            found = position_of({"symbol": symbol, **inner} if isinstance(inner, dict) else inner, symbol)
            if found is not None:
                return found
        values: Iterable[Any] = doc.values()
    elif isinstance(doc, list):
        values = doc
    else:
        return None
    for value in values:
        if isinstance(value, dict | list):
            found = position_of(value, symbol)
            if found is not None:
                return found
    return None


def _mentions(doc: Any, symbol: str) -> bool:
    if isinstance(doc, dict):
        return symbol in doc or doc.get("symbol") == symbol or any(_mentions(v, symbol) for v in doc.values())
    if isinstance(doc, list):
        return any(_mentions(v, symbol) for v in doc)
    return False


async def position(target: Target, http: httpx.AsyncClient) -> float | None:
    answer = await call(http, "GET", f"{_base(target, 'ptrc')}/positions", target.timeout,
                        params={"account": target.account})
    if answer.response is None or answer.response.status_code != 200:
        return None
    return position_of(json_of(answer.response), SYMBOL) or 0.0


async def books_reflect(target: Target, http: httpx.AsyncClient, r: CheckResult,
                         before: float | None) -> None:
    started = time.perf_counter()
    expected = (before or 0.0) + QTY
    held: float | None = None
    pnl_doc: Any = None
    pnl_url = f"{_base(target, 'pnl')}/pnl"
    while True:
        held = await position(target, http)
        answer = await call(http, "GET", pnl_url, target.timeout, params={"account": target.account})
        pnl_doc = json_of(answer.response)
        position_ok = held is not None and abs(held - expected) < QTY / 10
        pnl_ok = answer.response is not None and answer.response.status_code == 200 and \
            _mentions(pnl_doc, SYMBOL)
        if position_ok and pnl_ok:
            break
        if time.perf_counter() - started > 2 * target.timeout:
            if not position_ok:
                r.fail(f"ptrc position {SYMBOL} is {held}, expected {expected:g} after the fill",
                       target.logs_remedy("ptrc"))
            if not pnl_ok:
                r.fail(f"pnl shows nothing for {SYMBOL} on account {target.account} after the fill",
                       target.logs_remedy("pnl"))
            break
        await asyncio.sleep(0.01)
    r.duration_ms = (time.perf_counter() - started) * 1000
    if r.status == "pass":
        r.summary = f"position {held:g} {SYMBOL} in {r.duration_ms:.0f} ms"
