"""Key endpoints, exercised for real: the original backend's 404s (risk /check, gateway
/tickers and /ticker). The OMS round trip, which trades, is round_trip.py."""

from __future__ import annotations

import json
import shlex
import time
from datetime import datetime
from typing import Any

import httpx

from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.round_trip import QTY, SYMBOL, contract_for, live_price
from trade_ops.doctor.target import Target

__all__ = [
    "SYMBOL",
    "check_gateway_ticker",
    "check_gateway_tickers",
    "check_gateway_unknown",
    "check_risk",
    "reproduce",
]

FRESH_S = 15.0
_TS_KEYS = ("ts", "timestamp", "time", "updated_ts", "last_update")


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


