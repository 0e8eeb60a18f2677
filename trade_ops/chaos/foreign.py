"""Where a fault acts on a component trade-ops did not start: as the stack file says it runs.

    container = "NAME"                        the Docker engine: kill, pause, unpause, start
    compose_file + compose_service            the same, on the container compose runs for that
                                              service (found by compose's own labels)
    pid = N                                   signals: SIGSTOP and SIGCONT. A kill cannot be
                                              undone (trade-ops cannot start the process again),
                                              so only the stop faults act on a pid

Every fault is checked before any order is placed (`check_faults`): one that cannot act
where its component runs is a usage error (exit 2) that names the faults possible there.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trade_ops.chaos.faults import Fault
from trade_ops.errors import UsageError
from trade_ops.runtime.docker import connect, engine_errors
from trade_ops.stack import Component, Stack

__all__ = ["ACTIONS", "Foreign", "check_faults", "fault_needs", "foreign_control"]

KILL, STOP = "kill", "stop"  # a kill is undone by a start, a stop by a resume
ACTIONS = (KILL, STOP)


def fault_needs(fault: Fault) -> list[tuple[str, str]]:
    """(component, action) pairs a fault acts through."""
    return {
        "valkey-kill": [("valkey", KILL)], "nats-kill": [("nats", KILL)], "nats-stop": [("nats", STOP)],
        "valkey-restart-burst": [("valkey", KILL)], "burst": [],
        "service-kill": [(fault.arg or "", KILL)], "service-stop": [(fault.arg or "", STOP)],
        "claim-crash": [("risk", STOP), ("oms", KILL)],
    }[fault.name]


@dataclass(frozen=True)
class Foreign:
    """A component trade-ops did not start, reached as the stack file says it runs."""

    component: Component

    @property
    def where(self) -> str:
        c = self.component
        if c.container:
            return f"container {c.container}"
        if c.compose_service or c.compose_file:
            return f"compose service {c.compose_service or c.name} of {c.compose_file}"
        return f"pid {c.pid}"

    @property
    def actions(self) -> tuple[str, ...]:
        return (KILL, STOP) if self.component.pid is None else (STOP,)

    # -- containers ------------------------------------------------------------------------
    def _container(self) -> Any:
        c = self.component
        client = connect(timeout=30)
        if c.container:
            return client.containers.get(c.container)
        labels = [f"com.docker.compose.service={c.compose_service or c.name}"]
        if c.compose_file:
            labels.append(f"com.docker.compose.project.working_dir={Path(c.compose_file).resolve().parent}")
        found = client.containers.list(all=True, filters={"label": labels})
        if not found:
            service = c.compose_service or c.name
            raise UsageError(f"no container runs compose service {service} of {c.compose_file}",
                             detail=f"start it: docker compose -f {c.compose_file} up -d {service}")
        return found[0]

    # -- the runtime's fault verbs -----------------------------------------------------------
    def kill(self) -> None:
        with engine_errors():
            container = self._container()
            container.kill()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and container.status == "running":
                time.sleep(0.05)
                container.reload()

    def pause(self) -> None:
        self._hold(signal.SIGSTOP, "pause")

    def resume(self) -> None:
        self._hold(signal.SIGCONT, "unpause")

    def _hold(self, sig: signal.Signals, verb: str) -> None:
        """A process named by its pid gets `sig`; a container, the engine's `verb` (pause, unpause)."""
        if self.component.pid is not None:
            os.kill(self.component.pid, sig)
            return
        with engine_errors():
            getattr(self._container(), verb)()

    def start(self, timeout: float = 30.0) -> str | None:
        """Start the killed container again; None once it runs (and is healthy, when Docker
        checks its health), else why not."""
        with engine_errors():
            container = self._container()
            container.start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                container.reload()
                health = (container.attrs.get("State", {}).get("Health") or {}).get("Status")
                if container.status == "running" and health in (None, "healthy"):
                    return None
                time.sleep(0.2)
        return f"{self.where} started again but not running (healthy) in {timeout:g}s"


def foreign_control(stack: Stack, name: str) -> Foreign | None:
    """How a fault reaches `name` when trade-ops does not run it, or None (the stack file does
    not say how it runs)."""
    c = stack.components.get(name)
    if c is None or not (c.container or c.compose_service or c.compose_file or c.pid is not None):
        return None
    return Foreign(c)


def _possible(stack: Stack, ours: set[str]) -> list[str]:
    """The faults that can act here, each with where it acts."""
    def can(name: str, action: str) -> str | None:
        if name in ours:
            return "trade-ops"
        f = foreign_control(stack, name)
        return f.where if f is not None and action in f.actions else None

    out = ["burst"]
    for fault, needs in (("valkey-kill", [("valkey", KILL)]), ("valkey-restart-burst", [("valkey", KILL)]),
                         ("nats-kill", [("nats", KILL)]), ("nats-stop", [("nats", STOP)]),
                         ("claim-crash", [("risk", STOP), ("oms", KILL)])):
        wheres = [can(n, a) for n, a in needs]
        if all(wheres):
            out.append(f"{fault} ({', '.join(w for w in wheres if w)})")
    for svc in stack.services:
        for fault, action in (("service-kill", KILL), ("service-stop", STOP)):
            if where := can(svc.name, action):
                out.append(f"'{fault} {svc.name}' ({where})")
    return out


def check_faults(faults: list[Fault], stack: Stack, ours: set[str], run_dir: Path) -> None:
    """Refuse, before any order is placed, a fault that cannot act where its component runs:
    not run by trade-ops from `run_dir` (`ours`), and the stack file does not say how it runs
    (or says a pid, which a kill cannot be undone on)."""
    for fault in faults:
        for name, action in fault_needs(fault):
            if name in ours:
                continue
            f = foreign_control(stack, name)
            if f is not None and action in f.actions:
                continue
            why = (f"{name} runs as {f.where}, which trade-ops can stop and resume but not start again"
                   if f is not None else
                   f"{name} is not run by trade-ops from {run_dir}, and the stack file does not say how it "
                   "runs (a `pid`, a `container`, or `compose_file` and `compose_service`)")
            raise UsageError(f"fault {fault.label} cannot act here: {why}",
                             detail="possible here: " + ", ".join(_possible(stack, ours)))
