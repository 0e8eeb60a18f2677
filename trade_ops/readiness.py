"""Is a component ready? valkey answers PING, nats its health with JetStream up (asked as
the operator's system user, nats_system.py; /healthz where a stack file opens a monitoring
port), a service `/livez` then `/health` with HTTP 200. Each probe is short, so a wait polls
them often.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trade_ops import identity, infra, nats_system
from trade_ops.nats_system import SystemLogin
from trade_ops.stack import Component

__all__ = ["Outcome", "http_status", "login_for", "probe", "wait_ready"]

# No proxy for these probes: they always target the stack's own hosts.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answered."""
    try:
        with _opener.open(url, timeout=timeout) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError, http.client.HTTPException):  # not HTTP: nobody of ours answered
        return None


def login_for(run_dir: Path, c: Component) -> SystemLogin | None:
    """How a NATS of the stack in `run_dir` is asked whether it is ready: as its system user."""
    from trade_ops import credentials

    return credentials.system_login(run_dir, f"nats://{c.host}:{c.port}") if c.kind == "nats" else None


def probe(c: Component, timeout: float = 1.0, instance: str | None = None,
          login: SystemLogin | None = None) -> str | None:
    """None when `c` is ready, else why not (for the error message). `instance`: the id
    trade-ops gave the process (identity.py): ready only when its /livez carries it.
    `login`: the operator's system-account user, how a NATS of trade-ops' own is asked."""
    if c.kind == "valkey":
        return None if infra.valkey_ready(c.host, c.port or 0, timeout) else "PING got no PONG"
    if c.kind == "nats":
        if login is not None:
            return nats_system.unhealthy(login, timeout)
        if c.monitor_port:
            ok = infra.nats_ready(f"http://{c.host}:{c.monitor_port}", timeout)
            return None if ok else "/healthz not ok"
        return "no system-account credentials and no monitoring port to ask"
    if c.kind == "lake":
        return None
    if instance is not None:
        why = identity.impostor(c.base_url, c.port, instance, timeout, strict=identity.own_service(c.command))
        if why is not None:
            return why
    for path in (c.live_path, c.health_path) if instance is None else (c.health_path,):
        status = http_status(c.base_url + path, timeout)
        if status != 200:
            return f"{path} answered {status}" if status else f"{path} did not answer"
    return None


@dataclass
class Outcome:
    ready: bool
    seconds: float
    reason: str | None = None  # when not ready
    dead: bool = False  # the process exited


def wait_ready(c: Component, exited: Callable[[], str | None], deadline: float,
               interval: float = 0.1, cancel: threading.Event | None = None,
               instance: str | None = None, login: SystemLogin | None = None) -> Outcome:
    """Poll `c` until ready, until its process exits (`exited` then says how), the deadline,
    or until `cancel` is set (Ctrl-C: the caller stops waiting)."""
    start = time.monotonic()
    while True:
        if cancel is not None and cancel.is_set():
            return Outcome(False, time.monotonic() - start, "cancelled")
        gone = exited()
        if gone:
            return Outcome(False, time.monotonic() - start, gone, dead=True)
        reason = probe(c, timeout=min(1.0, max(0.1, deadline - time.monotonic())), instance=instance,
                       login=login)
        if reason is None:
            return Outcome(True, time.monotonic() - start)
        if time.monotonic() >= deadline:
            return Outcome(False, time.monotonic() - start, f"not ready in time ({reason})")
        if cancel is not None:
            cancel.wait(interval)
        else:
            time.sleep(interval)
