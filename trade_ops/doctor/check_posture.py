"""Security posture: is anything reachable without credentials?

Each probe asks as an anonymous client and changes nothing:

    valkey   PING without AUTH: +PONG is open, -NOAUTH is protected
    nats     the INFO line the server sends first: `auth_required`
    nats monitoring
             GET /varz at the HTTP monitoring URL doctor reads: it has no authentication,
             so an answer shows anyone every user, subscription, stream and consumer
    risk     DELETE /kill-switch for a symbol that is never halted: 401/403 is protected
    oms      GET /orders without a token: 401 is protected (per-account tokens on). The OMS
             trade-ops started turns them off on loopback by design (the caller names its
             account, and the OMS has no admin endpoint): a pass there, with why, --strict
             or not; any other OMS open on loopback is a note, and under --strict a warning

    endpoints  a foreign service's OpenAPI (`/openapi.json`): its mutating operations
               (POST/PUT/PATCH/DELETE) that are not order entry and carry no security
               requirement are listed, never called: admin endpoints open to anyone

Open on a non-loopback address is a failure: anyone on the network can change state.
Open on loopback is a note, and under --strict a warning, for every probe alike (a
laptop stack started by hand is fine otherwise). The kill switch is probed only where
doctor may trade (its own stack, or --trade): an old risk might clear more than the
symbol it is given. A stack `trade-ops up` started has credentials, so it passes either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from services import env
from services.hosts import is_loopback
from trade_ops.doctor.check_infra import nats_info
from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult, Group
from trade_ops.doctor.target import Target
from trade_ops.stack import Component

__all__ = ["ORDER_ENTRY", "OWN_OMS_ON_LOOPBACK", "PROBE_SYMBOL", "open_admin_endpoints", "posture_checks"]

PROBE_SYMBOL = "DOCTOR-POSTURE-PROBE"  # never halted: clearing it changes nothing
OWN_OMS_ON_LOOPBACK = (
    "trade-ops' OMS on loopback scopes orders by the account the caller names (X-Account or "
    "?account=); per-account tokens are on where it binds off loopback, or with "
    f"{env.setting_var('account_tokens')}=on; it has no admin endpoint")
GROUP: Group = "configuration"


async def _valkey_open(host: str, port: int, timeout: float) -> bool:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(b"PING\r\n")
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if line.startswith(b"+PONG"):
        return True
    if line.startswith((b"-NOAUTH", b"-WRONGPASS", b"-DENIED")):
        return False
    raise OSError(f"unexpected answer {line[:60]!r}")


async def _nats_open(host: str, port: int, timeout: float) -> bool:
    return not (await nats_info(host, port, timeout)).get("auth_required", False)


def _host_port(c: Component) -> tuple[str, int]:
    if c.url:
        parts = urlsplit(c.url)
        return parts.hostname or c.host, parts.port or 80
    return c.host, c.port or 0


class _Posture:
    def __init__(self, target: Target, strict: bool) -> None:
        self.target, self.strict = target, strict

    def remedy(self, c: Component, what: str, by_up: bool = True) -> str:
        if by_up and c.name in self.target.processes:  # trade-ops runs it: up writes the credentials
            flags = self.target.flags()
            return f"trade-ops down{flags} && trade-ops up{flags}"
        return f"manual step: {what}"

    def judge(self, r: CheckResult, c: Component, host: str, is_open: bool, how: str, fix: str,
              by_up: bool = True, verb: str = "answers without credentials",
              harm: str = "anyone on the network can change state") -> None:
        where = "loopback" if is_loopback(host) else "a non-loopback address"
        r.data.update(open=is_open, address=host, loopback=where == "loopback")
        if not is_open:
            r.summary = f"needs credentials ({how})"
            return
        r.summary = f"open without credentials on {where}"
        detail = f"{c.name} at {host} {verb} ({how})"
        if where != "loopback":
            r.fail(f"{detail}: {harm}", self.remedy(c, fix, by_up))
        elif self.strict:
            r.warn(detail + " (loopback: only users of this machine; --strict)", self.remedy(c, fix, by_up))
        else:
            r.details.append(detail + "; fine on loopback, --strict warns")


def posture_checks(target: Target, http: httpx.AsyncClient, strict: bool
                   ) -> list[tuple[CheckResult, Callable[[], Awaitable[None]]]]:
    """(result, probe) for valkey, nats, risk and oms where doctor examines them."""
    p, t = _Posture(target, strict), target.timeout
    out: list[tuple[CheckResult, Callable[[], Awaitable[None]]]] = []

    for c in target.infra:
        if c.kind not in ("valkey", "nats"):
            continue
        r = CheckResult(f"posture {c.name}", GROUP, component=c.name)

        async def infra_probe(c: Component = c, r: CheckResult = r) -> None:
            host, port = _host_port(c)
            try:
                if c.kind == "valkey":
                    is_open = await _valkey_open(host, port, t)
                    how, fix = "PING without AUTH", "enable ACL users (or requirepass) and protected-mode"
                else:
                    is_open = await _nats_open(host, port, t)
                    how, fix = "INFO auth_required", "configure NATS users with permissions"
            except (OSError, TimeoutError, ValueError) as exc:
                r.status, r.summary = "skip", f"not reachable ({exc or 'timed out'})"
                return
            p.judge(r, c, host, is_open, how, fix)

        out.append((r, infra_probe))

    if target.nats_monitor is not None:
        out.append(_monitoring_posture(target, http, p))

    for c in target.services:
        if c.name not in ("risk", "oms"):
            continue
        r = CheckResult(f"posture {c.name}", GROUP, component=c.name)
        method, path, how = ("DELETE", f"/kill-switch?symbol={PROBE_SYMBOL}", "kill switch without a token") \
            if c.name == "risk" else ("GET", "/orders?limit=1", "orders without an account token")

        async def service_probe(c: Component = c, r: CheckResult = r, method: str = method,
                                path: str = path, how: str = how) -> None:
            if method != "GET" and not target.may_trade:
                r.status, r.summary = "skip", "read-only here (add --trade to probe the kill switch)"
                return
            answer = await call(http, method, c.base_url + path, t)
            if answer.response is None:
                r.status, r.summary = "skip", f"not reachable ({answer.error})"
                return
            code = answer.response.status_code
            if code in (404, 405):
                r.status, r.summary = "skip", f"no such endpoint ({code})"
                return
            host = _host_port(c)[0]
            if c.name == "oms" and code not in (401, 403) and target.started("oms") and is_loopback(host):
                r.data.update(open=True, address=host, loopback=True, by_design=True)
                r.summary = "orders scoped by the account the caller names (loopback, by design)"
                r.details.append(f"{how}: HTTP {code}: {OWN_OMS_ON_LOOPBACK}")
                return
            fix = (f"start oms with {env.setting_var('account_tokens')}=on and its account_tokens secret"
                   if c.name == "oms" else
                   f"start risk with an operator token ({env.setting_var('operator_token')} or its "
                   "secrets dir)")
            # `up` gives the OMS per-account tokens only off loopback: a restart changes nothing here.
            p.judge(r, c, host, code not in (401, 403), f"{how}: HTTP {code}", fix, by_up=c.name != "oms")

        out.append((r, service_probe))

    return out


def _monitoring_posture(target: Target, http: httpx.AsyncClient, p: _Posture
                        ) -> tuple[CheckResult, Callable[[], Awaitable[None]]]:
    """NATS's HTTP monitoring at the URL doctor was given: whoever reaches it reads it."""
    url = target.nats_monitor or ""
    c = next((c for c in target.infra if c.kind == "nats"), None) or Component("nats", "nats")
    r = CheckResult("posture nats monitoring", GROUP, component=c.name)

    async def probe() -> None:
        answer = await call(http, "GET", f"{url}/varz", target.timeout)
        if answer.response is None:
            r.status, r.summary = "skip", f"not reachable ({answer.error})"
            return
        code = answer.response.status_code
        p.judge(r, c, urlsplit(url).hostname or url, code == 200, f"GET {url}/varz: HTTP {code}",
                "open no HTTP monitoring port (nats-server without --http_port / http_port; a trade-ops "
                "stack file without monitor_port), and read monitoring as a system-account user",
                by_up=False, verb="shows its users, subscriptions, streams and consumers without credentials",
                harm="anyone on the network reads who connects and what flows")

    return r, probe


def endpoint_checks(target: Target, http: httpx.AsyncClient, strict: bool
                    ) -> tuple[list[CheckResult], Callable[[], Awaitable[None]]] | None:
    """(results, probe) for the admin endpoints of the services trade-ops did not start: a first
    result for all of them, then one per service whose OpenAPI lists open ones, added as read."""
    foreign = [c for c in target.services if not target.started(c.name)]
    if not foreign:
        return None
    head = CheckResult("posture admin endpoints", GROUP)
    found = [head]

    async def probe() -> None:
        p = _Posture(target, strict)
        rows = [CheckResult(f"posture {c.name} endpoints", GROUP, component=c.name) for c in foreign]
        reasons = await asyncio.gather(*(_openapi_probe(target, http, p, c, r) for c, r in zip(
            foreign, rows, strict=True)))
        read = [r for r, why in zip(rows, reasons, strict=True) if why is None]
        found.extend(r for r in read if r.data.get("open_endpoints"))
        unread = [f"{c.name} ({why})" for c, why in zip(foreign, reasons, strict=True) if why]
        if not read:
            head.skip(f"no OpenAPI document to read: {', '.join(unread)}")
            return
        head.rest_on("openapi")
        opened = sum(len(r.data.get("open_endpoints") or []) for r in read)
        head.summary = f"{len(read)} OpenAPI document(s) read · {opened} open admin endpoint(s)"
        if unread:
            head.details.append(f"not read: {', '.join(unread)}")

    return found, probe


# Order entry is meant to be called: its own checks (accounts, risk) guard it. A pre-trade
# check changes nothing.
ORDER_ENTRY = ("/orders", "/order", "/check")
MUTATING = ("post", "put", "patch", "delete")


def open_admin_endpoints(doc: Any) -> list[str]:
    """`METHOD /path` of each mutating operation that is not order entry and that the
    document asks no credentials for (no `security` on the operation, none at the top)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        return []
    default = doc.get("security") or []
    out = []
    for path, ops in doc["paths"].items():
        if not isinstance(ops, dict) or any(path == e or path.startswith(e + "/") for e in ORDER_ENTRY):
            continue
        for method in MUTATING:
            op = ops.get(method)
            if isinstance(op, dict) and not (op.get("security", default) or []):
                out.append(f"{method.upper()} {path}")
    return out


async def _openapi_probe(target: Target, http: httpx.AsyncClient, p: _Posture, c: Component,
                         r: CheckResult) -> str | None:
    """A foreign service's admin endpoints, read from its OpenAPI: listed, never called.
    None, or why it could not be read."""
    if await target.is_own(c.name):
        return "a trade-ops service: its admin endpoints need the operator token"
    answer = await call(http, "GET", c.base_url + "/openapi.json", target.timeout)
    doc = json_of(answer.response)
    if answer.response is None or answer.response.status_code != 200 or not isinstance(doc, dict):
        return answer.error or f"/openapi.json: HTTP {answer.response.status_code}"  # type: ignore[union-attr]
    r.rest_on("openapi")
    found = open_admin_endpoints(doc)
    r.data["open_endpoints"] = found
    if not found:
        r.summary = "no open admin endpoint in its OpenAPI"
        return None
    p.judge(r, c, _host_port(c)[0], True, "its OpenAPI gives them no security requirement; listed, "
            "not called", f"require credentials on {', '.join(found)} in {c.name}",
            verb=f"has admin endpoints open without credentials: {', '.join(found)}")
    return None
