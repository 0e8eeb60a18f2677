"""One NATS connection attempt that gives up: the way trade-ops' probes connect.

nats-py counts `max_reconnect_attempts` only above 0: with 0 (and allow_reconnect=False) a
first connect to a NATS that refuses is retried for ever, 2 s apart, so a probe of a dead
NATS waited out whatever bound its caller had (doctor's reconciliation: its whole 13.5 s
budget). One attempt more, 50 ms later, and then the error: the caller hears it at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["connect_once"]


async def _quiet(exc: Exception) -> None:
    """nats-py logs each error with its traceback by default; the caller hears of a failure by
    the exception connect_once raises."""


async def connect_once(url: str, *, name: str, timeout: float,
                       login: Mapping[str, str] | None = None,
                       error_cb: Callable[[Exception], Awaitable[None]] | None = None) -> Any:
    """A connected client (nats.aio.client.Client) or the error of the attempt (nats.errors.Error,
    OSError or TimeoutError); it never reconnects later either. `login`: user and password
    (credentials.nats_login), or none."""
    import nats

    return await nats.connect(url, name=name, connect_timeout=timeout, max_reconnect_attempts=1,
                              reconnect_time_wait=0.05, allow_reconnect=False,
                              error_cb=error_cb or _quiet, **(login or {}))
