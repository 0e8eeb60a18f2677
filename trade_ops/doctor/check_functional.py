"""Key endpoints, exercised for real: the original backend's 404s and orders that never filled.

The OMS round trip trades on a dedicated doctor account and keeps it flat: a small
MARKET buy, then the same sell, each waited for until FILLED.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import httpx

from trade_ops.credentials import operator_headers
from trade_ops.doctor import order_contract
from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.order_contract import Contract
from trade_ops.doctor.target import Target

__all__ = [
    "SYMBOL",
    "check_gateway_ticker",
    "check_gateway_tickers",
    "check_gateway_unknown",
    "check_risk",
    "position_of",
    "reproduce",
    "round_trip",
]

SYMBOL = "BTCUSDT"
QTY = 0.001
FRESH_S = 15.0
_TS_KEYS = ("ts", "timestamp", "time", "updated_ts", "last_update")
_QTY_KEYS = ("quantity", "net_quantity", "position", "qty", "size")


def _base(target: Target, name: str) -> str:
    return target.stack[name].base_url


def reproduce(target: Target, service: str, method: str, path: str, body: Any = None) -> str:
    """The curl command that sends what doctor sent: it runs wherever the service runs."""
    url = shlex.quote(_base(target, service) + path)
    if body is None:
        return f"curl -sS -m 5 {url}" if method == "GET" else f"curl -sS -m 5 -X {method} {url}"
    data = shlex.quote(json.dumps(body, separators=(",", ":")))
    return f"curl -sS -m 5 -X {method} {url} -H 'content-type: application/json' -d {data}"


def _bad(r: CheckResult, what: str, answer: Any, target: Target, service: str, body: Any = None) -> None:
    """Why a call did not give what a check needed, with the fix for that reason."""
    method, _, path = what.partition(" ")
    if answer.response is None:
        r.fail(f"{what}: {answer.error}", target.up_remedy(service) if answer.refused
               else target.logs_remedy(service))
    elif answer.response.status_code == 404:
        r.fail(f"{what} answered 404 (the original backend's missing endpoint)",
               f"serve {what} in the {service} service (manual step); see: "
               f"{reproduce(target, service, method, path, body)}")
    else:
        fix = target.logs_remedy(service) if target.supervised else reproduce(target, service, method, path,
                                                                                body)
        r.fail(f"{what}: HTTP {answer.response.status_code} {answer.response.text[:160]}", fix)


async def contract_for(target: Target, http: httpx.AsyncClient, service: str, path: str) -> Contract:
    """What `POST path` of `service` reads: the stack file's [contracts.*], its OpenAPI, or ours."""
    key = "order" if service == "oms" else service
    table = target.stack.contracts.get(key)
    if table is not None:
        return order_contract.from_table(table, f"[contracts.{key}] in the stack file")
    if target.supervised and not target.explicit:
        return order_contract.builtin()
    url = _base(target, service) + "/openapi.json"
    answer = await call(http, "GET", url, target.timeout)
    found = order_contract.from_openapi(json_of(answer.response), path, f"the OpenAPI schema at {url}")
    return found or order_contract.builtin()


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


async def check_risk(target: Target, http: httpx.AsyncClient, r: CheckResult, oversized: bool) -> None:
    qty = 1e9 if oversized else QTY
    contract = await contract_for(target, http, "risk", "/check")
    fields: dict[str, Any] = {"account": target.account, "symbol": SYMBOL, "side": "buy", "quantity": qty}
    if contract.needs_price:
        fields["price"] = await live_price(target, http) or 1.0
        plain = contract.body({k: v for k, v in fields.items() if k != "price"})
        bare = await call(http, "POST", _base(target, "risk") + "/check", target.timeout, json=plain)
        if not oversized and bare.response is not None and bare.response.status_code >= 500:
            r.fail(f"POST /check without price: HTTP {bare.response.status_code} "
                   f"{bare.response.text[:120]} (a missing field must be a 4xx with a reason, not a crash)",
                   reproduce(target, "risk", "POST", "/check", plain))
    body = contract.body(fields)
    r.data["contract"] = contract.describe()
    answer = await call(http, "POST", _base(target, "risk") + "/check", target.timeout, json=body)
    r.data["latency_ms"] = round(answer.ms, 1)
    doc = json_of(answer.response)
    if answer.response is None or answer.response.status_code != 200 or not isinstance(doc, dict) \
            or "approved" not in doc:
        _bad(r, "POST /check", answer, target, "risk", body)
        return
    verdict = f"approved={doc['approved']} risk_level={doc.get('risk_level')}"
    r.summary = f"{verdict} · {answer.ms:.0f} ms"
    if oversized and doc["approved"]:
        r.fail(f"an order of {qty:g} {SYMBOL} was approved ({verdict})",
               "set risk limits (max order quantity / notional) in the risk service settings (manual step)")
    elif not oversized and not doc["approved"]:
        r.fail(f"a {qty:g} {SYMBOL} order was rejected: {doc.get('reason')}",
               f"check risk limits and the kill switch: {target.logs_remedy('risk')}")
    elif oversized:
        r.details.append(f"rejected: {doc.get('reason')}")


def _tickers(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("tickers"), list | dict):
        doc = doc["tickers"]
    if isinstance(doc, dict):
        return [{"symbol": k, **v} if isinstance(v, dict) else {"symbol": k} for k, v in doc.items()]
    return [t for t in doc if isinstance(t, dict)] if isinstance(doc, list) else []


def _age_s(entry: dict[str, Any], now: float) -> float | None:
    for key in _TS_KEYS:
        value = entry.get(key)
        if isinstance(value, str):  # the seed's `timestamp`: ISO-8601
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
        if isinstance(value, int | float) and value > 0:
            seconds = value / 1000 if value > 1e11 else value
            return max(0.0, now - seconds)
    return None


async def check_gateway_tickers(target: Target, http: httpx.AsyncClient, r: CheckResult) -> None:
    answer = await call(http, "GET", _base(target, "gateway") + "/tickers", target.timeout)
    if answer.response is None or answer.response.status_code != 200:
        _bad(r, "GET /tickers", answer, target, "gateway")
        return
    tickers = _tickers(json_of(answer.response))
    if not tickers:
        r.fail("GET /tickers is empty: no market data", target.logs_remedy("gateway"))
        return
    now = time.time()
    ages = [a for a in (_age_s(t, now) for t in tickers) if a is not None]
    r.data.update(symbols=len(tickers), latency_ms=round(answer.ms, 1))
    newest = min(ages) if ages else None
    r.summary = f"{len(tickers)} symbols" + (f" · newest {newest:.1f}s old" if newest is not None else "")
    if not ages:
        r.warn("tickers carry no timestamp: freshness unknown")
    elif newest is not None and newest > FRESH_S:
        r.fail(f"tickers are stale: newest is {newest:.0f}s old", target.logs_remedy("gateway"))


async def check_gateway_ticker(target: Target, http: httpx.AsyncClient, r: CheckResult) -> None:
    answer = await call(http, "GET", f"{_base(target, 'gateway')}/ticker/{SYMBOL}", target.timeout)
    doc = json_of(answer.response)
    if answer.response is None or answer.response.status_code != 200 or not isinstance(doc, dict):
        _bad(r, f"GET /ticker/{SYMBOL}", answer, target, "gateway")
        return
    price = next((doc.get(k) for k in ("last", "price", "mid", "bid") if doc.get(k)), None)
    r.summary = f"{SYMBOL} {price}" if price is not None else SYMBOL


async def check_gateway_unknown(target: Target, http: httpx.AsyncClient, r: CheckResult) -> None:
    answer = await call(http, "GET", f"{_base(target, 'gateway')}/ticker/NOSUCHSYMBOL", target.timeout)
    if answer.response is None:
        _bad(r, "GET /ticker/NOSUCHSYMBOL", answer, target, "gateway")
    elif answer.response.status_code != 404:
        r.fail(f"GET /ticker/NOSUCHSYMBOL answered {answer.response.status_code}, expected 404",
               "answer 404 for unknown symbols in the gateway (manual step)")
    else:
        r.summary = "404 as expected"


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


async def _position(target: Target, http: httpx.AsyncClient) -> float | None:
    answer = await call(http, "GET", f"{_base(target, 'ptrc')}/positions", target.timeout,
                        params={"account": target.account})
    if answer.response is None or answer.response.status_code != 200:
        return None
    return position_of(json_of(answer.response), SYMBOL) or 0.0


CONTRACT_HINT = ("the order doctor sent does not match this OMS's contract: "
                 "set [contracts.order] in the stack file")
_DONE = ("FILLED", "REJECTED", "CANCELLED", "CANCELED", "EXPIRED")


async def _order(target: Target, http: httpx.AsyncClient, side: str, contract: Contract,
                 price: float | None) -> tuple[dict[str, Any] | None, str]:
    """Place a small order and wait until FILLED: (the filled order, "") or (None, why not)."""
    oms = _base(target, "oms")
    fields: dict[str, Any] = {"account": target.account, "symbol": SYMBOL, "side": side, "quantity": QTY,
                              "order_type": "MARKET", "time_in_force": "IOC",
                              "client_order_id": f"doctor-{uuid.uuid4().hex}"}
    if contract.needs_price:  # no MARKET orders there: a marketable LIMIT at the live quote
        fields.update(order_type="LIMIT", time_in_force="GTC", price=price)
    body = contract.body(fields)
    started = time.perf_counter()
    # As the operator when the stack has credentials: orders are scoped by account.
    auth = operator_headers(target.run_dir.path)
    answer = await call(http, "POST", oms + "/orders", target.timeout, json=body, headers=auth)
    doc = json_of(answer.response)
    if answer.response is None or answer.response.status_code not in (200, 201) or not isinstance(doc, dict):
        if answer.response is None:
            return None, f"POST /orders ({side}): {answer.error}"
        code = answer.response.status_code
        hint = f"; {CONTRACT_HINT}" if 400 <= code < 500 else ""
        return None, (f"POST /orders ({side}): HTTP {code} {answer.response.text[:200]}{hint}; "
                      f"doctor sent {json.dumps(body)} ({contract.describe()})")
    order = doc.get("order", doc)
    order_id = order.get("order_id") or order.get("id")
    accepted_ms = (time.perf_counter() - started) * 1000
    status = str(order.get("status", "")).upper()
    deadline = time.perf_counter() + 2 * target.timeout
    while status not in _DONE:
        if time.perf_counter() > deadline:
            return None, f"{side} order {order_id} still {status} {2 * target.timeout:.1f}s after ACCEPTED"
        await asyncio.sleep(0.005)
        poll = await call(http, "GET", f"{oms}/orders/{order_id}", target.timeout,
                          params={"account": target.account}, headers=auth)
        got = json_of(poll.response)
        if isinstance(got, dict):
            order = got.get("order", got)
            status = str(order.get("status", "")).upper()
    if status != "FILLED":
        return None, f"{side} order {order_id} ended {status}: {order.get('reason')}"
    order["_accepted_ms"] = round(accepted_ms, 1)
    order["_fill_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return order, ""


async def round_trip(target: Target, http: httpx.AsyncClient, trip: CheckResult,
                     books: CheckResult | None) -> None:
    """OMS round trip (trip) and, when ptrc and pnl run, positions and P&L reflecting it (books)."""
    started = time.perf_counter()
    contract = await contract_for(target, http, "oms", "/orders")
    price = await live_price(target, http) if contract.needs_price else None
    trip.data["contract"] = contract.describe()
    before = await _position(target, http) if books else None
    buy, why = await _order(target, http, "buy", contract, price)
    if buy is None:
        fix = target.logs_remedy("oms")
        if "after ACCEPTED" in why:  # accepted, never filled: where did it stop?
            from trade_ops.doctor.fillpath import stopped_at

            stage, component = await stopped_at(target, http)
            trip.data["stage"] = stage
            why = f"{why}: orders never fill: {stage}"
            if component:
                trip.component = component
                fix = target.logs_remedy(component)
        trip.fail(why, fix)
        trip.duration_ms = (time.perf_counter() - started) * 1000
        if books:
            books.status = "skip"
            books.details.append("no fill to reflect")
            books.duration_ms = trip.duration_ms
        return
    trip.data.update(order_id=buy.get("order_id") or buy.get("id"), accepted_ms=buy["_accepted_ms"],
                     order_to_fill_ms=buy["_fill_ms"], fill_price=buy.get("avg_fill_price"))
    trip.summary = f"ACCEPTED in {buy['_accepted_ms']:.0f} ms · FILLED in {buy['_fill_ms']:.0f} ms"
    if books is not None:
        await _books_reflect(target, http, books, before)
    sell, why = await _order(target, http, "sell", contract, price)
    if sell is None:
        trip.warn(f"flattening the doctor account failed: {why}", target.logs_remedy("oms"))
    else:
        trip.details.append(f"flat again: sell FILLED in {sell['_fill_ms']:.0f} ms")
    trip.duration_ms = (time.perf_counter() - started) * 1000


async def _books_reflect(target: Target, http: httpx.AsyncClient, r: CheckResult,
                         before: float | None) -> None:
    started = time.perf_counter()
    expected = (before or 0.0) + QTY
    held: float | None = None
    pnl_doc: Any = None
    pnl_url = f"{_base(target, 'pnl')}/pnl"
    while True:
        held = await _position(target, http)
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
