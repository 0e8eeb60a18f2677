"""What the bench sends: one Target per kind of request, each building request bytes
for request number i and classifying each answer.

Bench orders use the `bench` account, tiny quantities, alternating sides (so positions
stay flat and the bench never trips a risk limit) and a unique `client_order_id` per
request. Targets outside loopback are refused unless allow_remote.

A foreign OMS (or risk service) may name and spell its fields differently: the order is
then written in its contract (trade_ops.order_contract, the same code doctor uses), from
the stack file's `[contracts.order]` or its OpenAPI schema; fields it does not know are
left out. The same contract reads each answer: a rejection is what its status code or
body says (`RISK_REJECTED` in a 200 is a rejection, not a success).

Most targets answer over HTTP on a keep-alive Connection. `fill` and `sink` are done when
something arrives on the bus (trade_ops.bench.bus_targets): a Target names its own
transport (`connect`) and what ends a load (`finish`); the rest of the bench is the same.
"""

from __future__ import annotations

import socket
import string
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from services.hosts import addresses, is_loopback
from trade_ops import order_contract
from trade_ops.bench.client import build_head
from trade_ops.bench.target import HTTP_ERROR, OK, REJECTED, Target, by_status
from trade_ops.errors import UsageError
from trade_ops.order_contract import Contract

if TYPE_CHECKING:
    from trade_ops.bench.bus_targets import NatsAccess

__all__ = ["BUS_TARGETS", "TARGETS", "contract_for", "make_target"]

TARGETS = ("oms", "risk", "gateway", "http", "null", "fill", "sink")
# Targets answered on the bus: the services they need, the first the one they are sent to.
BUS_TARGETS = {"fill": ("oms", "exeq", "live-gateway", "gateway"), "sink": ("sink-ticks",)}

ORDER_DEFAULTS: dict[str, Any] = {"account": "bench", "symbol": "BTCUSDT", "quantity": 0.001,
                                  "order_type": "MARKET", "time_in_force": "IOC", "price": None}


def _oms_classifier(contract: Contract) -> Callable[[int, bytes], int]:
    """The OMS's own verdict of each answer: a rejection when its status code or body says so
    (this project's 422 `result: rejected`, another OMS's 200 `RISK_REJECTED`); any other
    2xx accepted; any other answer an error (a 422 for invalid input stays an error)."""
    def classify(status: int, body: bytes) -> int:
        if contract.rejects(status, body):
            return REJECTED
        return OK if 200 <= status < 300 else HTTP_ERROR

    return classify


def _rejection_words(contract: Contract) -> Callable[[int, bytes], str | bytes]:
    def words(status: int, body: bytes) -> str | bytes:
        try:
            return contract.read(status, orjson.loads(body)).shown()
        except orjson.JSONDecodeError:
            return body

    return words


def _classify_risk(status: int, body: bytes) -> int:
    if 200 <= status < 300:
        return REJECTED if b'"approved":false' in body.replace(b" ", b"") else OK
    return HTTP_ERROR


def _order_body(kind: str, opts: dict[str, Any], run_id: str,
                contract: Contract | None = None) -> Callable[[int], bytes]:
    base = {k: v for k, v in {**ORDER_DEFAULTS, **opts}.items() if v is not None}
    if kind == "risk":
        base = {k: base[k] for k in ("account", "symbol", "quantity", "price") if k in base}
    missing = contract.missing({**base, "client_order_id": ""}) if contract is not None else []
    if contract is not None and missing and kind == "oms":
        raise UsageError(f"the {kind} target requires {', '.join(missing)} ({contract.describe()})",
                         detail="give " + " ".join(f"--order {m}=VALUE" for m in missing)
                                + " (or `defaults` under [contracts.order] in the stack file)")
    if contract is not None and contract.needs_price and "price" not in {**contract.defaults, **base}:
        raise UsageError(f"the {kind} target requires a price ({contract.describe()})",
                         detail="give one near the market: --order price=50000 (or `price` in the "
                                "scenario's [order] table)")
    spell = contract.body if contract is not None else dict

    def body(i: int) -> bytes:
        doc = {**base, "side": "buy" if i % 2 == 0 else "sell"}
        if kind == "oms":
            doc["client_order_id"] = f"bench-{run_id}-{i}"
        return orjson.dumps(spell(doc))

    return body


def _template_body(template: str, run_id: str) -> Callable[[int], bytes]:
    """`$i`, `$run`, `$side` and `$uuid` are replaced per request."""
    tpl = string.Template(template)
    return lambda i: tpl.safe_substitute(i=i, run=run_id, side="buy" if i % 2 == 0 else "sell",
                                         uuid=uuid.uuid4().hex).encode()


def _check_loopback(host: str, allow_remote: bool) -> str:
    """The address to connect to; refuse anything but loopback unless allowed."""
    try:
        found = addresses(host)
    except socket.gaierror as exc:
        raise UsageError(f"cannot resolve target host {host!r}: {exc.strerror}") from None
    addr = found[0]
    if not allow_remote and not all(is_loopback(a) for a in found):
        raise UsageError(f"target host {host} ({addr}) is not loopback; pass --allow-remote to bench it")
    return addr


def make_target(kind: str, url: str, *, method: str | None = None, body: str | None = None,
                headers: dict[str, str] | None = None, order: dict[str, Any] | None = None,
                allow_remote: bool = False, run_id: str | None = None,
                contract: Contract | None = None, nats: NatsAccess | None = None) -> Target:
    """A target of `kind` at base `url` (for `http` and `null`, the full URL); orders and
    risk checks are written in `contract` when one is given. `fill` and `sink` also need
    the stack's NATS (`nats`); their `url` is the OMS's, the sink's."""
    if kind not in TARGETS:
        raise UsageError(f"unknown bench target {kind!r}; known: {', '.join(TARGETS)}")
    if kind in BUS_TARGETS:
        return _bus_target(kind, url, nats, headers=headers, order=order, run_id=run_id)
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"target URL {url!r} must be http://HOST:PORT/...")
    try:
        port = parts.port or 80
    except ValueError:
        raise UsageError(f"target URL {url!r} has a bad port") from None
    addr = _check_loopback(parts.hostname, allow_remote)
    run_id = run_id or uuid.uuid4().hex[:8]
    prefix = parts.path.rstrip("/")
    classify: Callable[[int, bytes], int] = lambda status, body: by_status(status)  # noqa: E731
    body_fn: Callable[[int], bytes] | None = None
    if kind in ("oms", "risk"):
        m, path = "POST", prefix + ("/orders" if kind == "oms" else "/check")
        body_fn = _order_body(kind, order or {}, run_id, contract)
        classify = _oms_classifier(contract or order_contract.builtin()) if kind == "oms" else _classify_risk
    elif kind == "gateway":
        m, path = "GET", prefix + "/tickers"
    else:
        m = (method or ("POST" if body else "GET")).upper()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body_fn = _template_body(body, run_id) if body is not None else None
    full = f"http://{parts.netloc}{path}"
    head = build_head(m, parts.hostname, port, path, headers, has_body=body_fn is not None)
    target = Target(kind, full, m, addr, port, path, head, body_fn, classify,
                    {"kind": kind, "method": m, "url": full, "order": order or None, "body": body,
                     "contract": contract.describe() if contract is not None else None})
    if kind == "oms":
        target.why_rejected = _rejection_words(contract or order_contract.builtin())
    return target


def _bus_target(kind: str, url: str, nats: NatsAccess | None, *, headers: dict[str, str] | None,
                order: dict[str, Any] | None, run_id: str | None) -> Target:
    from trade_ops.bench import bus_targets

    if nats is None:
        raise UsageError(f"the {kind} target reads the stack's NATS: bench the stack trade-ops started "
                         "(no --url)")
    run_id = run_id or uuid.uuid4().hex[:8]
    if kind == "fill":
        fields = {**ORDER_DEFAULTS, **(order or {})}
        orders = make_target("oms", url, headers=headers, order=order, run_id=run_id)
        return bus_targets.fill_target(orders, nats, str(fields["account"]))
    base = make_target("http", url.rstrip("/") + "/stats", run_id=run_id)
    return bus_targets.sink_target(base.url, base.host, base.port, nats, run_id)


def contract_for(kind: str, base_url: str, table: dict[str, Any] | None, *, foreign: bool,
                 timeout: float = 2.0) -> Contract | None:
    """The contract orders (risk checks) are written in: the stack file's `[contracts.order]`
    (`[contracts.risk]`) table, else for a foreign service (--url) what its OpenAPI schema
    states, else this project's own. None for targets that send no order."""
    if kind not in ("oms", "risk"):
        return None
    path = "/orders" if kind == "oms" else "/check"
    if table is not None or not foreign:
        return order_contract.resolve(table, None, path, None)
    import httpx

    url = base_url.rstrip("/") + "/openapi.json"
    try:
        answer = httpx.get(url, timeout=timeout)
        doc = answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        doc = None
    return order_contract.resolve(None, doc, path, url)
