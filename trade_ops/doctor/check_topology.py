"""Messaging topology, read from the NATS server: who publishes each subject, who hears it.

What each service publishes and consumes is declared, never parsed from source: by the
stack file (`publishes` / `consumes` of a service) or, for this project's own services,
by services/contract.py TOPOLOGY. The server says who actually listens: core
subscriptions per connection (`/connz?subs=1`, connections named after their service)
and JetStream consumers per stream (`/jsz?consumers=1`; a push consumer belongs to the
connection subscribed to its deliver subject, a pull one to the service its durable
name starts with). A subject a service publishes that nothing hears is a failure naming
the publisher; a service declared to consume a subject that holds no subscription for it
is one too, whatever its /health says. JetStream expectations apply only where a stream
captures the subject: a core NATS deployment is checked as core NATS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target

__all__ = ["Declared", "Server", "check_topology", "declared", "judge_subject", "overlap", "read_server"]


@dataclass
class Declared:
    publishes: dict[str, list[str]] = field(default_factory=dict)  # subject -> services
    consumes: dict[str, list[str]] = field(default_factory=dict)

    def subjects(self) -> list[str]:
        return list(dict.fromkeys([*self.publishes, *self.consumes]))


@dataclass
class Consumer:
    stream: str
    name: str
    service: str | None
    filters: list[str]
    lag: int


@dataclass
class Server:
    subs: dict[str, list[str]]  # connection name -> core subjects it subscribes to
    streams: dict[str, list[str]]  # stream -> subjects it captures
    consumers: list[Consumer]


def overlap(a: str, b: str) -> bool:
    """Whether two NATS subjects (either may hold `*` and `>`) can match one message."""
    ta, tb = a.split("."), b.split(".")
    for x, y in zip(ta, tb, strict=False):
        if ">" in (x, y):
            return True
        if x != y and "*" not in (x, y):
            return False
    return len(ta) == len(tb)


def _contract() -> dict[str, tuple[list[str], list[str]]]:
    """This project's own services: (publishes, consumes) subjects from services/contract.py."""
    try:
        from services.contract import FAMILIES, TOPOLOGY
    except ImportError:  # a deployment without this project's services: declared by its stack file
        return {}
    return {name: ([FAMILIES[f].wildcard for f in (*t.publishes, *t.requests)],
                   [FAMILIES[f].wildcard for f in (*t.consumes, *t.serves)])
            for name, t in TOPOLOGY.items()}


def declared(target: Target) -> Declared:
    out = Declared()
    ours = {} if target.explicit else _contract()
    for c in target.services:
        if c.publishes or c.consumes:
            pubs, cons = list(c.publishes), list(c.consumes)
        elif c.name in ours and c.app and c.app.startswith("services."):
            pubs, cons = ours[c.name]
        else:
            continue
        for subject in pubs:
            out.publishes.setdefault(subject, []).append(c.name)
        for subject in cons:
            out.consumes.setdefault(subject, []).append(c.name)
    return out


async def read_server(target: Target, http: httpx.AsyncClient) -> tuple[Server | None, str]:
    monitor = target.nats_monitor
    connz, jsz = await asyncio.gather(
        call(http, "GET", f"{monitor}/connz?subs=1&limit=4096", target.timeout),
        call(http, "GET", f"{monitor}/jsz?streams=1&consumers=1&config=1", target.timeout))
    conns = json_of(connz.response)
    if not isinstance(conns, dict):
        return None, connz.error or f"no JSON from {monitor}/connz"
    subs: dict[str, list[str]] = {}
    inbox_owner: dict[str, str] = {}
    for conn in conns.get("connections") or []:
        name = conn.get("name") or f"cid {conn.get('cid')}"
        for subject in conn.get("subscriptions_list") or []:
            if subject.startswith("_INBOX."):
                inbox_owner[subject] = name
            else:
                subs.setdefault(name, []).append(subject)
        subs.setdefault(name, [])
    streams: dict[str, list[str]] = {}
    consumers: list[Consumer] = []
    js = json_of(jsz.response)
    for account in (js or {}).get("account_details", []) if isinstance(js, dict) else []:
        for stream in account.get("stream_detail") or []:
            sname = stream.get("name", "?")
            streams[sname] = list((stream.get("config") or {}).get("subjects") or [])
            for cons in stream.get("consumer_detail") or []:
                config = cons.get("config") or {}
                filters = config.get("filter_subjects") or [config.get("filter_subject") or ">"]
                name = cons.get("name", "?")
                owner = inbox_owner.get(config.get("deliver_subject") or "") or next(
                    (s for s in sorted(subs, key=len, reverse=True) if name.startswith(s)), None)
                lag = int(cons.get("num_pending") or 0) + int(cons.get("num_ack_pending") or 0)
                consumers.append(Consumer(sname, name, owner, list(filters), lag))
    return Server(subs, streams, consumers), ""


def _consequence(subject: str) -> str:
    from services import contract

    if overlap(subject, contract.VENUE_ALL):
        return "orders routed there never reach a venue"
    if ".fill" in subject or overlap(subject, contract.EXEC_ALL):
        return "fills published there are never applied"
    if overlap(subject, contract.ORDERS_ALL):
        return "orders published there are never routed"
    return "what is published there reaches no one"


def judge_subject(subject: str, decl: Declared, server: Server, r: CheckResult) -> None:
    """One subject family: its publishers, who hears it on the server, and what is missing."""
    publishers = decl.publishes.get(subject, [])
    wanted = decl.consumes.get(subject, [])
    streams = [s for s, subjects in server.streams.items() if any(overlap(subject, x) for x in subjects)]
    core = sorted(n for n, subs in server.subs.items() if any(overlap(subject, s) for s in subs))
    durable = [c for c in server.consumers
               if c.stream in streams and any(overlap(subject, f) for f in c.filters)]
    hearing = set(core) | {c.service or c.name for c in durable}
    lags = {f"{c.stream}/{c.name}": c.lag for c in durable}
    r.data.update(subject=subject, publishers=publishers, consumers_declared=wanted,
                  subscribers=sorted(hearing), streams=streams, lags=lags)
    where = f"stream {', '.join(streams)}" if streams else "core NATS"
    worst = max(lags.values(), default=0)
    r.summary = (f"{', '.join(publishers) or '?'} -> {', '.join(sorted(hearing)) or 'nobody'} · {where}"
                 + (f" · max lag {worst}" if lags else ""))
    if publishers and not hearing and (wanted or not streams):
        verb = "publishes" if len(publishers) == 1 else "publish"
        r.fail(f"{', '.join(publishers)} {verb} {subject}; no subscriber: {_consequence(subject)}")
    for name in wanted:
        if name in hearing:
            continue
        if name in server.subs:
            r.fail(f"{name} declares it consumes {subject} but holds no subscription for it on the server, "
                   "whatever its /health says")
            r.component = name
        else:
            r.warn(f"no NATS connection named {name}: connection names identify services "
                   f"(nats.connect(name={name!r}))")
    if r.status == "fail" and r.component is None:
        r.component = next(iter(wanted or publishers), None)


async def check_topology(target: Target, http: httpx.AsyncClient, results: list[CheckResult]) -> None:
    """Fill one result per subject family (made by the runner from `declared`)."""
    server, error = await read_server(target, http)
    decl = declared(target)
    for r in results:
        if server is None:
            r.fail(f"NATS monitoring unreachable: {error}", target.up_remedy("nats"))
            continue
        judge_subject(str(r.data["subject"]), decl, server, r)
        if r.status == "fail" and r.component:
            r.remedy = target.logs_remedy(r.component)
