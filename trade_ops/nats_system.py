"""NATS monitoring over NATS itself, as the operator's system-account user.

nats-server's HTTP monitoring (/varz /connz /jsz /healthz) has no authentication: whoever
reaches its port reads every user name, subscription, stream and consumer. So trade-ops'
own NATS opens no monitoring port (only a stack file's `monitor_port` asks for one), and
its operator reads the same documents as requests in the system account
(credentials.SYSTEM_USER, whose password only the run directory's credentials.json holds):

    $SYS.REQ.SERVER.PING.<ENDPOINT>   payload: the endpoint's options as JSON
                                      (CONNZ {"subscriptions_detail": true, "limit": N},
                                      JSZ {"streams": true, "consumer": true, "config": true},
                                      HEALTHZ {"js-enabled-only": true}, VARZ {})
    reply                             {"server": {...}, "data": <the HTTP body>, "error": {...}}

A service's user is in another account and may not publish on `$SYS.` (permissions.py):
the server refuses it. Each call has a bounded timeout; a read that fails says why.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENDPOINTS", "MonitorError", "SystemLogin", "connect", "healthy", "read", "unhealthy"]

ENDPOINTS = ("varz", "connz", "jsz", "healthz")
# A single server answers the PING subject; the first reply is the whole answer.
PING = "$SYS.REQ.SERVER.PING.{endpoint}"
HEALTHY = {"js-enabled-only": True}  # ok only once JetStream is up, as /healthz?js-enabled-only=true


class MonitorError(Exception):
    """The system account gave no document: refused, no answer in time, or an error reply."""


@dataclass(frozen=True)
class SystemLogin:
    """Where the stack's NATS is and the operator's system-account user there."""

    url: str
    user: str
    password: str = field(repr=False)  # never in a log or a traceback


async def connect(login: SystemLogin, timeout: float, name: str) -> Any:
    """A connection as the system user (nats.aio.client.Client); MonitorError when refused."""
    from nats.errors import Error as NatsError

    from trade_ops.nats_connect import connect_once

    try:
        return await connect_once(login.url, name=name, timeout=timeout,
                                  login={"user": login.user, "password": login.password})
    except (NatsError, OSError, TimeoutError) as exc:
        raise MonitorError(f"cannot connect to {login.url} as {login.user}: "
                           f"{str(exc) or type(exc).__name__}") from None


async def read(nc: Any, endpoint: str, options: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    """The endpoint's document (what HTTP monitoring answers at /<endpoint>); MonitorError
    when nothing answers within `timeout` or the server replies with an error."""
    from nats.errors import Error as NatsError

    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown monitoring endpoint {endpoint!r}")
    subject = PING.format(endpoint=endpoint.upper())
    try:
        reply = await nc.request(subject, json.dumps(options or {}).encode(), timeout=timeout)
    except (NatsError, OSError, TimeoutError) as exc:
        raise MonitorError(f"{subject}: {str(exc) or 'no answer'}") from None
    try:
        doc = json.loads(reply.data)
    except ValueError:
        raise MonitorError(f"{subject}: not JSON") from None
    if not isinstance(doc, dict):
        raise MonitorError(f"{subject}: not a JSON object")
    error, data = doc.get("error"), doc.get("data")
    if error:
        raise MonitorError(f"{subject}: {error.get('description') if isinstance(error, dict) else error}")
    if not isinstance(data, dict):
        raise MonitorError(f"{subject}: no data in the reply")
    return data


async def _unhealthy(login: SystemLogin, timeout: float) -> str | None:
    nc = await connect(login, timeout, "trade-ops-readiness")
    try:
        data = await read(nc, "healthz", HEALTHY, timeout)
        return None if data.get("status") == "ok" else f"HEALTHZ: {data.get('error') or data.get('status')}"
    finally:
        await nc.close()


def unhealthy(login: SystemLogin, timeout: float = 0.5) -> str | None:
    """None when the server answers and its JetStream is up (the system account's HEALTHZ),
    else why not: `up`'s readiness probe for its own NATS, which opens no HTTP monitoring port."""
    try:
        return asyncio.run(asyncio.wait_for(_unhealthy(login, timeout), 2 * timeout + 0.5))
    except MonitorError as exc:
        if "authorization" in str(exc).lower():  # a NATS started with users of an older trade-ops
            return f"{exc} (a NATS started before this user existed: restart it)"
        return str(exc)
    except (OSError, TimeoutError):
        return f"no answer from {login.url} within {2 * timeout + 0.5:.1f}s"


def healthy(login: SystemLogin, timeout: float = 0.5) -> bool:
    return unhealthy(login, timeout) is None
