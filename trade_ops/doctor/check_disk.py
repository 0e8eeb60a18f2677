"""The disk under NATS's store, for a stack trade-ops started: doctor names a full disk,
and a NATS that stopped storing because of one.

nats-server that met "no space left on device" keeps failing to store on that stream
after space returns (measured on 2.15: every publish times out until it is restarted),
so a recent store failure with space free again is a NATS to restart, not a service to
look at (doctor blamed the gateway, and said `exeq dead` when `up` could not start).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from trade_ops import infra
from trade_ops.logfiles import Line

__all__ = ["FULL_BELOW_BYTES", "LOG_LINES", "STORE_FAILURE", "store_problem"]

FULL_BELOW_BYTES = 64 << 20  # free space under which JetStream cannot be relied on to store
STORE_FAILURE = "no space left on device"
RECENT_S = 30.0  # nats-server logs every failed store: one this recent means it is failing now
LOG_LINES = 200  # the end of its log read for a store failure


def store_problem(store: Path, log: Sequence[Line], flags: str, name: str = "nats",
                  now: float | None = None) -> tuple[str, str] | None:
    """(what is wrong, the remedy) for the NATS store at `store`, whose server's last log
    lines are `log`; None when its disk has room and NATS is storing."""
    try:
        usage = shutil.disk_usage(store)
    except OSError:
        return None
    mount = infra.mount_of(store)
    restart = f"trade-ops restart {name}{flags}"
    if usage.free < FULL_BELOW_BYTES:
        return (f"the disk of the NATS store is full: {mount} has {usage.free >> 20} MiB free of "
                f"{usage.total >> 20} MiB ({store}); JetStream cannot store, so every publish fails",
                f"manual step: free space on {mount}, then run `{restart}` (NATS keeps failing "
                "after a full disk until it is restarted)")
    last = _last_store_failure(log)
    if last is not None and (now or time.time()) - last <= RECENT_S:
        return (f"NATS failed to store on a full disk ({mount}) {(now or time.time()) - last:.0f}s "
                f"ago and keeps failing although {usage.free >> 20} MiB are free again: it must be "
                "restarted", restart)
    return None


def _last_store_failure(log: Sequence[Line]) -> float | None:
    times = [line.time for line in log if STORE_FAILURE in line.text and line.time]
    return times[-1] if times else None
