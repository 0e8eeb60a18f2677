"""Whom the CLI talks to: each process trade-ops starts is given a random instance id
(TRADE_OPS_INSTANCE_ID), which its `/livez` answers as `instance`.

    assign(run_dir, names)        new ids for the processes about to start (kept 0600 in
                                  RUN_DIR/secrets/instances.json, by either runtime)
    expected(run_dir, name)       the id trade-ops gave the running `name`, if any
    impostor(url, port, want)     None when `url` answers with the id `want`, else why not,
                                  naming the port's holder (pid and program) where the OS tells
    operator_headers_for(...)     the operator token, for a service that proves it is the
                                  process trade-ops started; an Impostor error otherwise

`up` is ready only when `/livez` carries the id it gave (readiness.py), so a program that
took a port between the port check and the start is never "ready"; doctor, bench and chaos
send the operator token only to a service that proves it, on a stack trade-ops started.
(The id is not a secret on the wire: it proves the process was started by this `up`, not
that nobody replays it.)
"""

from __future__ import annotations

import contextlib
import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trade_ops import credentials, processes
from trade_ops.errors import StartupError

if TYPE_CHECKING:
    from trade_ops.stack import Component

__all__ = ["INSTANCES_FILE", "Impostor", "assign", "expected", "impostor", "operator_headers_for",
           "own_service"]

INSTANCES_FILE = "instances.json"
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Impostor(StartupError):
    """Something other than the process trade-ops started answers on a service's port."""


def _path(run_dir: Path) -> Path:
    return credentials.credentials_dir(run_dir) / INSTANCES_FILE


def _read(run_dir: Path) -> dict[str, str]:
    try:
        data = json.loads(_path(run_dir).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def assign(run_dir: Path, names: list[str]) -> dict[str, str]:
    """A new random id for each of `names` (the processes about to start), kept beside the
    others; the ids of every process of the stack."""
    ids = {**_read(run_dir), **{name: secrets.token_hex(12) for name in names}}
    credentials.private_dir(credentials.credentials_dir(run_dir))
    credentials.write_private(_path(run_dir), json.dumps(ids, indent=2))
    return ids


def expected(run_dir: Path, name: str) -> str | None:
    return _read(run_dir).get(name)


def _livez(url: str, timeout: float) -> tuple[int | None, Any]:
    try:
        with _opener.open(url.rstrip("/") + "/livez", timeout=timeout) as resp:
            status, raw = resp.status, resp.read(4096)
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError, Exception):  # refused, reset, or not HTTP at all
        return None, None
    with contextlib.suppress(ValueError):
        return status, json.loads(raw)
    return status, None


def own_service(command: tuple[str, ...]) -> bool:
    """A service of this project, started as `python -m services NAME` (it answers its
    instance id); another program a stack file names may not know the id: it is held to it
    only when its /livez carries one."""
    return tuple(command[1:3]) == ("-m", "services")


def impostor(url: str, port: int | None, want: str, timeout: float = 1.0,
             strict: bool = True) -> str | None:
    """None when `url`'s /livez answers 200 with instance `want` (not `strict`: or with no
    instance at all); else what answers there."""
    status, body = _livez(url, timeout)
    if status is None:
        return f"nothing answers /livez at {url}"
    got = body.get("instance") if isinstance(body, dict) else None
    if status == 200 and (got == want or (not strict and got is None)):
        return None
    holder = processes.port_holder(port) if port else None
    said = f"instance {got}" if got else f"HTTP {status}, no instance id"
    return (f"{url} is not the process trade-ops started (its /livez answered {said}); "
            f"port {port} is held by {holder or 'a process the OS does not show'}")


def operator_headers_for(run_dir: Path, c: Component, timeout: float = 2.0) -> dict[str, str]:
    """The operator token for the service `c`: on a stack trade-ops started (it gave `c` an
    instance id), only when the service there gives that id back; an Impostor error (no
    token sent) when something else answers. Elsewhere: the run directory's token, if any."""
    name = c.name
    want = expected(run_dir, name) if not c.url else None
    headers = credentials.operator_headers(run_dir)
    if want is None or not headers:
        return headers
    why = impostor(c.base_url, c.port, want, timeout, strict=own_service(c.command))
    if why is not None and not why.startswith("nothing answers"):
        raise Impostor(f"{name}: an impostor: {why}; the operator token was not sent",
                       detail=f"stop what holds the port, then `trade-ops restart {name}`")
    return headers
