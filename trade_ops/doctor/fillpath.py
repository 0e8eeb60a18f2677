"""Where an accepted order that never filled stopped: from where this order went.

Two kinds of evidence, the first preferred:

    the wire      while the order is in flight doctor listens on NATS (when it may: given
                  the server, and allowed to subscribe to `>`) for messages carrying the
                  order's client order id or order id; the last subject that carried it is
                  how far it went, judged against the server (who hears that subject)
    the topology  followed from the OMS outwards along the declared flows, on the subjects
                  the server shows someone hears: a silent subject stops the walk only when
                  no subject of its hop is heard (an OMS that also publishes an unheard
                  `orders.accepted` routes its orders on the heard `orders.new`)

    routing   the OMS's order subject has no subscriber: not routed to the venue
    venue     the venue subject has no subscriber: no venue ever sees the order
    fill      every hop is heard: the venue received it and did not fill, or a fill was
              published and the OMS did not apply it (its consumer lags on the fill stream)
"""

from __future__ import annotations

import collections
import time
from typing import Any

import httpx

from trade_ops.doctor import monitoring
from trade_ops.doctor.check_topology import (
    Declared,
    Listening,
    Server,
    declared,
    judge_subject,
    overlap,
    read_server,
)
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target

__all__ = ["Trail", "follow", "stopped_at"]

OMS = "oms"
KEEP = 500  # messages kept to match an order id learnt after they passed
DEAD_END_QUIET_S = 0.3  # nothing carried the order further for this long after a dead end
PAYLOAD = 4096  # bytes of each message searched for the order's ids


class Trail:
    """Subjects that carried this order on NATS, in the order they were heard."""

    def __init__(self) -> None:
        self.recent: collections.deque[tuple[str, bytes, float]] = collections.deque(maxlen=KEEP)
        self.ear: Listening | None = None
        self.routed: set[str] = set()  # subjects judged heard: not asked of the server again

    @classmethod
    async def listen(cls, target: Target) -> Trail | None:
        """Listen on every subject of the target's NATS, or None where doctor may not."""
        trail = cls()
        trail.ear, _ = await Listening.open(target, trail._heard)
        return trail if trail.ear is not None else None

    async def _heard(self, msg: Any) -> None:
        self.recent.append((msg.subject, bytes(msg.data[:PAYLOAD]), time.perf_counter()))

    def carried(self, *ids: str | None) -> list[str]:
        keys = [i.encode() for i in ids if i]
        return list(dict.fromkeys(s for s, data, _ in self.recent if any(k in data for k in keys)))

    def quiet_for(self, *ids: str | None) -> float:
        """Seconds since a message last carried this order (0.0: none has yet)."""
        keys = [i.encode() for i in ids if i]
        last = max((t for _, data, t in self.recent if any(k in data for k in keys)), default=None)
        return 0.0 if last is None else time.perf_counter() - last

    async def dead_end(self, target: Target, http: httpx.AsyncClient, *ids: str | None) -> bool:
        """The order was carried to a subject that no one subscribes to and no stream keeps, and
        nothing carried it further for DEAD_END_QUIET_S: on core NATS it is gone, it cannot fill."""
        carried = self.carried(*ids)
        if not carried or carried[-1] in self.routed or self.quiet_for(*ids) < DEAD_END_QUIET_S \
                or not target.nats_monitor:
            return False
        server, _ = await read_server(target, http)
        if server is None:
            return False
        r = _judged(carried[-1], declared(target), server)
        if r.data.get("subscribers") or r.data.get("streams"):
            self.routed.add(carried[-1])
            return False
        return True

    async def close(self) -> None:
        if self.ear is not None:
            await self.ear.close()


def _consumers(decl: Declared, subject: str) -> list[str]:
    return [s for pattern, names in decl.consumes.items() if overlap(subject, pattern) for s in names]


def _judged(subject: str, decl: Declared, server: Server) -> CheckResult:
    r = CheckResult(subject, "dataflow")
    judge_subject(subject, decl, server, r)
    return r


def _stage(hop: int, r: CheckResult) -> str:
    return f"{'not routed to the venue' if hop == 0 else 'no venue subscriber'}: {r.problems[0]}"


def _along_wire(decl: Declared, server: Server, carried: list[str]) -> tuple[str, str | None]:
    last = carried[-1]
    ours = [s for s, names in decl.publishes.items() if OMS in names]
    hop = 0 if any(overlap(last, s) for s in ours) else 1
    r = _judged(next((s for s in decl.subjects() if overlap(last, s)), last), decl, server)
    path = " -> ".join(carried)
    if r.status == "fail" and r.problems:
        return f"{_stage(hop, r)} (the order went {path})", r.component
    heard = list(r.data.get("subscribers") or [])
    if not heard:
        return f"no subscriber for {last}: the order went {path} and no one hears it there", None
    return f"the order went {path}; {', '.join(heard)} heard {last} and nothing carried it further", heard[-1]


def follow(decl: Declared, server: Server, carried: list[str] | None = None) -> tuple[str, str | None]:
    """(the stage where orders stop, the component to look at) on this topology."""
    if carried:
        return _along_wire(decl, server, carried)
    frontier = [s for s, names in decl.publishes.items() if OMS in names]
    if not frontier:
        return "the OMS declares no subject it publishes orders on: declare `publishes` for oms " \
               "in the stack file", OMS
    seen: set[str] = set()
    for hop in range(4):
        judged = [(s, _judged(s, decl, server)) for s in frontier if s not in seen]
        seen.update(frontier)
        heard = [(s, r) for s, r in judged if r.status != "fail"]
        if judged and not heard:
            return _stage(hop, judged[0][1]), judged[0][1].component
        frontier = [p for s, _ in heard for consumer in _consumers(decl, s) if consumer != OMS
                    for p, names in decl.publishes.items() if consumer in names]
        if not frontier:
            break
    fills = [s for s, names in decl.consumes.items() if OMS in names]
    behind = [c for c in server.consumers if c.service == OMS and c.lag > 0
              and any(overlap(f, s) for f in c.filters for s in fills)]
    if behind:
        return (f"fill published and the OMS did not apply it: consumer {behind[0].stream}/{behind[0].name} "
                f"is {behind[0].lag} behind"), OMS
    venues = sorted({c for s in seen for c in _consumers(decl, s) if c != OMS})
    return f"the venue received the order and did not fill it (every hop is heard: {', '.join(venues)})", \
        venues[-1] if venues else None


async def stopped_at(target: Target, http: httpx.AsyncClient, trail: Trail | None = None,
                     *ids: str | None) -> tuple[str, str | None]:
    if not monitoring.available(target):
        return "doctor cannot follow it without NATS monitoring (give --nats-monitor URL)", None
    server, error = await read_server(target, http)
    if server is None:
        return f"doctor cannot follow it: NATS monitoring unreachable ({error})", None
    return follow(declared(target), server, trail.carried(*ids) if trail is not None else None)
