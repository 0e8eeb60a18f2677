"""NATS monitoring for the checks: one read, whichever way the deployment offers it.

    system account   trade-ops' own NATS (a stack it started): requests as the operator's
                     system user (trade_ops/nats_system.py); that NATS opens no HTTP port
    HTTP             a monitoring URL the user gives (`--nats-monitor`, a stack file's
                     `monitor_port`): another deployment's nats-server, read as before

Options are named as the system requests name them (`subscriptions_detail`, `consumer`,
`js-enabled-only`); the HTTP reader turns them into the query the HTTP endpoint reads.
Both give the endpoint's JSON document, or why there is none. The system connection is
opened at the first read and kept for the run (`close` ends it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from trade_ops import nats_system
from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.target import Target

__all__ = ["DOCTOR_CONNECTION", "Reading", "available", "close", "read", "where"]

DOCTOR_CONNECTION = "trade-ops-doctor"  # doctor's own NATS connections: the topology leaves them out

# The HTTP query of an option where it differs from the system request's name and value.
_QUERY = {"subscriptions_detail": ("subs", "detail"), "consumer": ("consumers", "true")}


@dataclass
class Reading:
    doc: dict[str, Any] | None  # the endpoint's document; None: no answer (then `error` says why)
    error: str = ""
    status: int | None = None  # HTTP-like: 200, or the healthz's own code when it is not ok


@dataclass
class _Session:
    """The run's one system-account connection, opened by the first read."""

    nc: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def available(target: Target) -> bool:
    return target.nats_system is not None or target.nats_monitor is not None


def where(target: Target) -> str:
    """Where monitoring is read, for messages (never a password)."""
    if target.nats_system is not None:
        return f"the system account at {target.nats_system.url}"
    return target.nats_monitor or "nowhere (give --nats-monitor URL)"


def _query(options: dict[str, Any]) -> str:
    pairs = [_QUERY.get(k, (k, "true" if v is True else str(v))) for k, v in options.items()]
    return urlencode(pairs, safe="=")


async def read(target: Target, http: httpx.AsyncClient, endpoint: str, **options: Any) -> Reading:
    """`endpoint` (varz, connz, jsz, healthz) with `options`, within the target's timeout."""
    if target.nats_system is not None:
        return await _read_system(target, endpoint, options)
    if target.nats_monitor is None:
        return Reading(None, "no NATS monitoring to read (give --nats-monitor URL)")
    url = f"{target.nats_monitor}/{endpoint}" + (f"?{_query(options)}" if options else "")
    answer = await call(http, "GET", url, target.timeout)
    doc = json_of(answer.response)
    status = answer.response.status_code if answer.response is not None else None
    if not isinstance(doc, dict):
        return Reading(None, answer.error or f"no JSON from {target.nats_monitor}/{endpoint}", status)
    return Reading(doc, "", status)


async def _read_system(target: Target, endpoint: str, options: dict[str, Any]) -> Reading:
    login = target.nats_system
    assert login is not None
    session = target.monitor_session
    if session is None:
        session = target.monitor_session = _Session()
    target.contacted.add(urlsplit(login.url).netloc)
    try:
        async with session.lock:
            if session.nc is None or session.nc.is_closed:
                session.nc = await nats_system.connect(login, 2 * target.timeout, DOCTOR_CONNECTION)
        doc = await nats_system.read(session.nc, endpoint, options, target.timeout)
    except nats_system.MonitorError as exc:
        return Reading(None, str(exc))
    # healthz says its own code (503 while JetStream is not up); every other document is a 200
    status = int(doc.get("status_code") or 200) if endpoint == "healthz" else 200
    return Reading(doc, "", status)


async def close(target: Target) -> None:
    session, target.monitor_session = target.monitor_session, None
    if session is not None and session.nc is not None and not session.nc.is_closed:
        await session.nc.close()
