"""The faults `trade-ops chaos` injects, through the stack's runtime (trade_ops/runtime):
signals to the processes the supervisor started (by pid), or the same through the Docker
engine to the containers of `up --runtime docker` (kill, pause, unpause, start).

A fault is written NAME[ SVC][@START][+HOLD]: START seconds into the load, held HOLD
seconds, then undone (a killed process started again, a stopped one continued).
Without @START a fault starts 2 s after the previous one ends.

    valkey-kill            SIGKILL valkey, start it again (same data dir: AOF replayed)
    nats-kill              SIGKILL nats-server, start it again (same store)
    nats-stop              SIGSTOP nats-server (a container: paused), SIGCONT it
    service-kill SVC       SIGKILL a service, start it again
    service-stop SVC       SIGSTOP a service (a container: paused), SIGCONT it
    valkey-restart-burst   valkey killed and started again, then a burst of 60 orders at once
    burst [N]              N orders at once (default 100)
    claim-crash            oms SIGKILLed while requests hold their client_order_id claim
                           (risk is stopped so they wait there), then both brought back
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from trade_ops.chaos.result import FaultRun
from trade_ops.errors import UsageError

__all__ = ["FAULTS", "Fault", "parse_faults"]

FAULTS = ("valkey-kill", "nats-kill", "nats-stop", "service-kill", "service-stop",
          "valkey-restart-burst", "burst", "claim-crash")
_NEEDS_SERVICE = ("service-kill", "service-stop")
_SPEC = re.compile(r"^(?P<name>[a-z-]+)(?:[ :](?P<arg>[A-Za-z0-9_-]+))?"
                   r"(?:@(?P<start>\d+(?:\.\d+)?))?(?:\+(?P<hold>\d+(?:\.\d+)?))?$")
DEFAULT_HOLD_S = 2.0
GAP_S = 2.0


@dataclass
class Fault:
    name: str
    arg: str | None = None
    start_s: float = 0.0
    hold_s: float = DEFAULT_HOLD_S
    # filled in while it runs (seconds from the load's start)
    began: float | None = None
    ended: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name}{' ' + self.arg if self.arg else ''}@{self.start_s:g}+{self.hold_s:g}"

    def record(self) -> FaultRun:
        return FaultRun(fault=self.label, began_s=_r(self.began), ended_s=_r(self.ended), notes=self.notes)


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def parse_faults(specs: list[str], services: list[str]) -> list[Fault]:
    faults: list[Fault] = []
    at = 2.0
    for spec in specs:
        m = _SPEC.match(spec.strip())
        if not m or m["name"] not in FAULTS:
            raise UsageError(f"unknown fault {spec!r}; known: {', '.join(FAULTS)} "
                             "(written NAME[ SVC][@START][+HOLD], e.g. 'service-kill oms@5+1')")
        name, arg = m["name"], m["arg"]
        if name in _NEEDS_SERVICE and arg not in services:
            raise UsageError(f"fault {name} needs one of the stack's services, not {arg!r}: "
                             f"{', '.join(services)}")
        if name == "burst" and arg is not None and not arg.isdigit():
            raise UsageError(f"burst takes a number of orders, not {arg!r}")
        if name not in _NEEDS_SERVICE and name != "burst" and arg is not None:
            raise UsageError(f"fault {name} takes no argument (got {arg!r})")
        start = float(m["start"]) if m["start"] else at
        hold = float(m["hold"]) if m["hold"] else DEFAULT_HOLD_S
        faults.append(Fault(name, arg, start, hold))
        at = start + hold + GAP_S
    return faults
