"""What a runtime starts and what it reports, shared by every runtime (trade_ops/runtime/):
the plan (which components, dependencies first), the port checks made before anything
starts, and the status row of a started component.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from trade_ops import infra, processes
from trade_ops.errors import PortInUseError, StackFileError, UsageError
from trade_ops.stack import Component, Stack

__all__ = ["LOG_TAIL_LINES", "ProcessStatus", "check_port_range", "check_ports", "component_ports", "plan"]

LOG_TAIL_LINES = 20
MAX_PORT = 65535


@dataclass
class ProcessStatus:
    name: str
    kind: str
    pid: int | None
    port: int | None
    state: str  # "ready" | "running" | "dead" | "failed" | "stopped"
    alive: bool
    uptime_s: float | None
    restarts: int
    ready_s: float | None  # seconds from start to ready, as measured when it started
    log: Path

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "log": str(self.log)}



# -- what to start ---------------------------------------------------------------------
def plan(stack: Stack, only: list[str] | None = None) -> list[Component]:
    """The components `up` runs, dependencies first.

    Without `only`: the infrastructure and every enabled service whose code exists.
    With `only`: those services and what they depend on (a named service must exist;
    a dependency whose code is not written yet is skipped: services tolerate that).
    """
    if only:
        # valkey and nats may be named too: doctor's remedy for a dead one is `up --only valkey`.
        services = sorted(s.name for s in stack.services)
        infra_names = [c.name for c in stack.infra if c.kind != "lake"]
        unknown = [n for n in only if n not in (*services, *infra_names)]
        if unknown:
            raise UsageError(f"unknown service {', '.join(map(repr, unknown))}",
                             detail=f"known services: {', '.join(services)}; "
                                    f"infrastructure: {', '.join(infra_names)}")
        missing = [n for n in only if not stack[n].exists()]
        if missing:
            raise UsageError(f"no code for {', '.join(missing)} yet ({stack[missing[0]].app} not found)")
        names = stack.closure(only)
    else:
        names = [n for n in stack.start_order() if not stack[n].is_service or stack[n].enabled]
    chosen = [stack[n] for n in names]
    return [c for c in chosen if not c.is_service or (c.exists() and not c.url)]


def component_ports(c: Component) -> list[int]:
    return [p for p in (c.port, c.monitor_port) if p is not None]


def check_port_range(components: list[Component], offset: int) -> None:
    """Every port is 1..65535, or a UsageError saying which offsets would fit."""
    ports = [(c.name, p) for c in components for p in component_ports(c)]
    bad = [(name, p) for name, p in ports if not 1 <= p <= MAX_PORT]
    if not bad:
        return
    name, port = bad[0]
    if offset == 0:
        raise StackFileError(f"{name} has port {port}; a port is 1..{MAX_PORT}")
    bases = [p - offset for _, p in ports]
    low, high = 1 - min(bases), MAX_PORT - max(bases)
    raise UsageError(f"--port-offset {offset} puts {name} on port {port}; a port is 1..{MAX_PORT}",
                     detail=f"choose a --port-offset from {low} to {high}")


def check_ports(components: list[Component]) -> None:
    """Every port the components need is free, or a PortInUseError naming each taken one."""
    taken: list[str] = []
    owners: dict[int, str] = {}
    for c in components:
        for port in component_ports(c):
            if port in owners:
                raise StackFileError(f"port {port} is given to both {owners[port]} and {c.name}")
            owners[port] = c.name
            if infra.port_in_use(port, c.host):
                holder = processes.port_holder(port)
                taken.append(f"port {port} ({c.name}) is in use" + (f" by {holder}" if holder else ""))
    if taken:
        raise PortInUseError("; ".join(taken) + "; nothing was started",
                             detail="stop what holds it, or shift the stack with --port-offset N")
