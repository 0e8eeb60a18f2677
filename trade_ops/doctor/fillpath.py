"""Where an accepted order that never filled stopped, from the messaging topology.

Followed from the OMS outwards along the declared flows (what the OMS publishes, who
consumes that and what they publish, ...), each subject judged against the server:

    routing   the OMS's order subject has no subscriber: not routed to the venue
    venue     the venue subject has no subscriber: no venue ever sees the order
    fill      every hop is heard: the venue received it and did not fill, or a fill was
              published and the OMS did not apply it (its consumer lags on the fill stream)
"""

from __future__ import annotations

import httpx

from trade_ops.doctor.check_topology import Declared, Server, declared, judge_subject, overlap, read_server
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target

__all__ = ["follow", "stopped_at"]

OMS = "oms"


def _consumers(decl: Declared, subject: str) -> list[str]:
    return [s for pattern, names in decl.consumes.items() if overlap(subject, pattern) for s in names]


def follow(decl: Declared, server: Server) -> tuple[str, str | None]:
    """(the stage where orders stop, the component to look at) on this topology."""
    frontier = [s for s, names in decl.publishes.items() if OMS in names]
    if not frontier:
        return "the OMS declares no subject it publishes orders on: declare `publishes` for oms " \
               "in the stack file", OMS
    seen: set[str] = set()
    for hop in range(4):
        following: list[str] = []
        for subject in frontier:
            if subject in seen:
                continue
            seen.add(subject)
            r = CheckResult(subject, "dataflow")
            judge_subject(subject, decl, server, r)
            if r.status == "fail":
                stage = "not routed to the venue" if hop == 0 else "no venue subscriber"
                return f"{stage}: {r.problems[0]}", r.component
            for consumer in _consumers(decl, subject):
                if consumer != OMS:
                    following += [s for s, names in decl.publishes.items() if consumer in names]
        frontier = following
    fills = [s for s, names in decl.consumes.items() if OMS in names]
    behind = [c for c in server.consumers if c.service == OMS and c.lag > 0
              and any(overlap(f, s) for f in c.filters for s in fills)]
    if behind:
        return (f"fill published and the OMS did not apply it: consumer {behind[0].stream}/{behind[0].name} "
                f"is {behind[0].lag} behind"), OMS
    venues = sorted({c for s in seen for c in _consumers(decl, s) if c != OMS})
    return f"the venue received the order and did not fill it (every hop is heard: {', '.join(venues)})", \
        venues[-1] if venues else None


async def stopped_at(target: Target, http: httpx.AsyncClient) -> tuple[str, str | None]:
    if not target.nats_monitor:
        return "doctor cannot follow it without NATS monitoring (give --nats-monitor URL)", None
    server, error = await read_server(target, http)
    if server is None:
        return f"doctor cannot follow it: NATS monitoring unreachable ({error})", None
    return follow(declared(target), server)
