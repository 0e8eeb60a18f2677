"""Messaging topology: who publishes each subject, who hears it, read from the server and the wire.

Three sources, each named in the results' `rests_on`:

    nats monitoring   core subscriptions per connection (connz with subscription detail)
                      and JetStream streams and consumers (jsz): who actually listens
                      (trade-ops' own NATS: asked as its system user; another: HTTP)
    wire sample       on a foreign deployment, doctor subscribes to everything for a
                      bounded window (default 2 s) and counts what is published: the
                      subjects nobody hears, the subscriptions and consumer filters that
                      hear nothing while related subjects flow (`market.tick.*.*` against
                      `market.tick.BTCUSDT`). Skipped, with why, where doctor's user may
                      not subscribe or no NATS address was given.
    declarations      trade-ops' own services: services/contract.py TOPOLOGY; any service:
                      `publishes` / `consumes` in the stack file

A connection is a service by its name, or by its address: an unnamed connection from
this host belongs to the process that holds its socket, and that process's listening
port is a service's. A connection that matches no service is shown by its address,
once, never warned about subject by subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from trade_ops.doctor import monitoring
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import HostSockets, Target

__all__ = ["Declared", "Ear", "Heard", "Listening", "Server", "Wire", "check_topology", "declared",
           "judge_subject", "open_ear", "overlap", "read_server", "related", "sample", "settled"]

MONITORING = "nats monitoring"
WIRE = "wire sample"
DOCTOR_CONNECTION = monitoring.DOCTOR_CONNECTION
_INTERNAL = ("_INBOX.", "$JS.", "$SYS.", "$KV.", "$O.", "_R_.", "$JSC.")


@dataclass
class Declared:
    publishes: dict[str, list[str]] = field(default_factory=dict)  # subject -> services
    consumes: dict[str, list[str]] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # service -> "stack file" | "trade-ops' model"

    def subjects(self) -> list[str]:
        return list(dict.fromkeys([*self.publishes, *self.consumes]))


@dataclass
class Consumer:
    stream: str
    name: str
    service: str | None
    filters: list[str]
    lag: int
    redelivered: int = 0
    ack_pending: int = 0


@dataclass
class Connection:
    cid: int
    label: str  # the service it is, or its name, or "client IP:PORT"
    service: str | None
    address: str
    subs: list[str]
    in_msgs: int
    named: bool


@dataclass
class Server:
    subs: dict[str, list[str]]  # connection label -> core subjects it subscribes to
    streams: dict[str, list[str]]  # stream -> subjects it captures
    consumers: list[Consumer]
    connections: list[Connection] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # stream -> how many subjects it holds


@dataclass
class Wire:
    """What the sample heard: messages per subject, and each connection's published count."""

    window: float  # how long it listened
    counts: Counter[str]
    published: dict[int, int]  # cid -> messages it published in the window
    # stream -> the subjects it holds messages on (its history: what flows into it)
    stored: dict[str, list[str]] = field(default_factory=dict)


def overlap(a: str, b: str) -> bool:
    """Whether two NATS subjects (either may hold `*` and `>`) can match one message."""
    ta, tb = a.split("."), b.split(".")
    for x, y in zip(ta, tb, strict=False):
        if ">" in (x, y):
            return True
        if x != y and "*" not in (x, y):
            return False
    return len(ta) == len(tb)


def related(pattern: str, subject: str) -> bool:
    """A subject the pattern was surely meant for and does not match: they share the
    pattern's literal prefix (the tokens before its first wildcard)."""
    tokens = pattern.split(".")
    prefix = [t for t in tokens[:next((i for i, t in enumerate(tokens) if t in ("*", ">")), len(tokens))]]
    if not prefix or len(prefix) == len(tokens) or overlap(pattern, subject):
        return False
    return subject.split(".")[:len(prefix)] == prefix


def _contract() -> dict[str, tuple[list[str], list[str]]]:
    """This project's own services: (publishes, consumes) subjects from services/contract.py."""
    from services.contract import FAMILIES, TOPOLOGY

    return {name: ([FAMILIES[f].wildcard for f in (*t.publishes, *t.requests)],
                   [FAMILIES[f].wildcard for f in (*t.consumes, *t.serves)])
            for name, t in TOPOLOGY.items()}


def declared(target: Target) -> Declared:
    """What the stack file declares, and trade-ops' contract for its own services."""
    out = Declared()
    ours = _contract()
    for c in target.services:
        if c.publishes or c.consumes:
            pubs, cons = list(c.publishes), list(c.consumes)
            out.source[c.name] = "stack file"
        elif c.name in ours and target.is_own_now(c.name):
            pubs, cons = ours[c.name]
            out.source[c.name] = "trade-ops' model"
        else:
            continue
        for subject in pubs:
            out.publishes.setdefault(subject, []).append(c.name)
        for subject in cons:
            out.consumes.setdefault(subject, []).append(c.name)
    return out


def _listeners() -> HostSockets:
    """This host's TCP sockets: ((local port, remote port) -> pids, pid -> ports it listens on).
    Keyed by both ports: Linux gives one ephemeral port to connections to different servers."""
    import psutil

    clients: dict[tuple[int, int], set[int]] = {}
    listening: dict[int, set[int]] = {}
    try:
        sockets = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return {}, {}
    for s in sockets:
        if s.pid is None or not s.laddr:
            continue
        if s.status == psutil.CONN_LISTEN:
            listening.setdefault(s.pid, set()).add(s.laddr.port)
        elif s.raddr:
            clients.setdefault((s.laddr.port, s.raddr.port), set()).add(s.pid)
    return clients, listening


async def _host_sockets(target: Target, ports: set[int]) -> HostSockets:
    """_listeners(), read once a run and again only when a connection's port is not in what was
    read. psutil reads every process's descriptors (~25 ms on a host of ~170 processes), in a
    thread holding the GIL against doctor's event loop, and the server is read up to four
    times a run: the topology, after the wire sample, the round trip's fill path."""
    if not ports:
        return {}, {}
    known = target.host_sockets
    if known is None or not ports <= {local for local, _ in known[0]}:
        known = target.host_sockets = await asyncio.to_thread(_listeners)
    return known


def _by_port(target: Target) -> dict[int, str]:
    from urllib.parse import urlsplit

    out: dict[int, str] = {}
    for c in target.services:
        parts = urlsplit(c.base_url)
        if parts.port and (parts.hostname or "") in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
            out[parts.port] = c.name
    return out


async def read_server(target: Target, http: httpx.AsyncClient) -> tuple[Server | None, str]:
    connz, jsz = await asyncio.gather(
        monitoring.read(target, http, "connz", subscriptions_detail=True, limit=4096),
        monitoring.read(target, http, "jsz", streams=True, consumer=True, config=True))
    conns = connz.doc
    if conns is None:
        return None, connz.error
    names = {c.name for c in target.services}
    raw = [c for c in conns.get("connections") or [] if c.get("name") != DOCTOR_CONNECTION]
    unnamed_local = [c for c in raw if not c.get("name") and str(c.get("ip")) in ("127.0.0.1", "::1")]
    clients, listening = await _host_sockets(target, {int(c.get("port") or 0) for c in unnamed_local})
    ports = _by_port(target)
    nats_c = next((c for c in target.infra if c.kind == "nats"), None)
    server_port = nats_c.port if nats_c is not None else None
    connections: list[Connection] = []
    inbox_owner: dict[str, str] = {}
    for conn in raw:
        address = f"{conn.get('ip')}:{conn.get('port')}"
        name = conn.get("name") or ""
        service = name if name in names else None
        if service is None and not name and conn in unnamed_local:
            port = int(conn.get("port") or 0)
            pids = set().union(*(p for (local, remote), p in clients.items()
                                 if local == port and remote == (server_port or remote)))
            owners = {ports[p] for pid in pids for p in listening.get(pid, ()) if p in ports}
            service = owners.pop() if len(owners) == 1 else None
        label = service or name or f"client {address}"
        subjects = [str(s.get("subject", "")) if isinstance(s, dict) else str(s)
                    for s in conn.get("subscriptions_list_detail") or conn.get("subscriptions_list") or []]
        for subject in subjects:
            if subject.startswith("_INBOX."):
                inbox_owner[subject] = label
        connections.append(Connection(int(conn.get("cid") or 0), label, service, address,
                                      [s for s in subjects if not s.startswith("_INBOX.")],
                                      int(conn.get("in_msgs") or 0), bool(name)))
    subs: dict[str, list[str]] = {}
    for c in connections:
        subs.setdefault(c.label, []).extend(c.subs)
    streams: dict[str, list[str]] = {}
    held: dict[str, int] = {}
    consumers: list[Consumer] = []
    for account in (jsz.doc or {}).get("account_details", []):
        for stream in account.get("stream_detail") or []:
            sname = stream.get("name", "?")
            streams[sname] = list((stream.get("config") or {}).get("subjects") or [])
            held[sname] = int((stream.get("state") or {}).get("num_subjects") or 0)
            for cons in stream.get("consumer_detail") or []:
                config = cons.get("config") or {}
                filters = config.get("filter_subjects") or [config.get("filter_subject") or ">"]
                name = cons.get("name", "?")
                owner = inbox_owner.get(config.get("deliver_subject") or "") or next(
                    (s for s in sorted(subs, key=len, reverse=True) if name.startswith(s)), None)
                lag = int(cons.get("num_pending") or 0) + int(cons.get("num_ack_pending") or 0)
                consumers.append(Consumer(sname, name, owner, list(filters), lag,
                                          int(cons.get("num_redelivered") or 0),
                                          int(cons.get("num_ack_pending") or 0)))
    return Server(subs, streams, consumers, connections, held), ""


def _consequence(subject: str) -> str:
    from services import contract

    if overlap(subject, contract.VENUE_ALL):
        return "orders routed there never reach a venue"
    if ".fill" in subject or overlap(subject, contract.EXEC_ALL):
        return "fills published there are never applied"
    if overlap(subject, contract.ORDERS_ALL):
        return "orders published there are never routed"
    return "what is published there reaches no one"


def judge_subject(subject: str, decl: Declared, server: Server, r: CheckResult,
                  unmatched: set[str] | None = None) -> None:
    """One subject family: its publishers, who hears it on the server, and what is missing.

    A declared consumer that no connection is known to be (by name or address) is added
    to `unmatched`, said once by the caller, never a warning per subject."""
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
    r.rest_on(MONITORING, *sorted({decl.source.get(n, "stack file") for n in (*publishers, *wanted)}))
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
        elif unmatched is not None:
            unmatched.add(name)
    if r.status == "fail" and r.component is None:
        r.component = next(iter(wanted or publishers), None)


def _subject_remedy(target: Target, r: CheckResult) -> str:
    """The subject and who publishes it; trade-ops' log command for its own services."""
    component = r.component
    if component and target.started(component):
        return target.logs_remedy(component)
    subject = r.data.get("subject")
    publishers = ", ".join(r.data.get("publishers") or []) or "its publisher"
    wanted = r.data.get("consumers_declared") or []
    if wanted:
        return (f"manual step: make {', '.join(wanted)} subscribe {subject} (published by {publishers}); "
                "its log says why its subscription failed")
    return (f"manual step: subscribe a consumer to {subject} (published by {publishers}), "
            "or stop publishing it")


class Listening:
    """doctor's NATS connection subscribed to every subject (`>`): the wire sample's, and the
    round trip's while its order is in flight (fillpath.Trail). `denied` holds a permissions
    violation, which arrives asynchronously."""

    def __init__(self, nc: Any, denied: list[str]) -> None:
        self.nc, self.denied = nc, denied

    @property
    def why_not(self) -> str:
        return f"doctor's NATS user may not subscribe to every subject ({self.denied[0]})" \
            if self.denied else ""

    @classmethod
    async def open(cls, target: Target, heard: Callable[[Any], Awaitable[None]]
                   ) -> tuple[Listening | None, str]:
        """(listening, "") or (None, why not)."""
        nats_c = next((c for c in target.infra if c.kind == "nats"), None)
        if nats_c is None or nats_c.port is None:
            return None, "no NATS address to subscribe at (give --nats nats://HOST:PORT)"
        from nats.errors import Error as NatsError

        from trade_ops.credentials import nats_login
        from trade_ops.nats_connect import connect_once

        denied: list[str] = []

        async def error(exc: Exception) -> None:
            if "permission" in str(exc).lower():
                denied.append(str(exc).strip())

        target.contacted.add(f"{nats_c.host}:{nats_c.port}")
        try:
            nc = await connect_once(f"nats://{nats_c.host}:{nats_c.port}", name=DOCTOR_CONNECTION,
                                    timeout=2 * target.timeout, error_cb=error,
                                    login=nats_login(target.logins))
        except (NatsError, OSError, TimeoutError) as exc:
            where = f"{nats_c.host}:{nats_c.port}"
            return None, f"doctor cannot connect to NATS at {where} ({exc or 'timed out'})"
        ear = cls(nc, denied)
        try:
            await nc.subscribe(">", cb=heard)
            await nc.flush(timeout=max(1, round(target.timeout)))
            await asyncio.sleep(0.05)  # a permissions violation arrives asynchronously
        except (NatsError, OSError, TimeoutError) as exc:
            denied.append(str(exc) or type(exc).__name__)
        if denied:
            await ear.close()
            return None, ear.why_not
        return ear, ""

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.nc.close()


# The sample ends before its window once more listening can change no verdict (settled()),
# and never before QUIET_S without a new subject heard.
QUIET_S = 0.25
RELATED_ENOUGH = 5  # related messages a filter that matched none of them is judged on
MAX_STORED_SUBJECTS = 1000  # a stream's subjects are read only when it holds at most this many


def settled(server: Server, counts: Counter[str], stored: dict[str, list[str]]) -> bool:
    """Whether more of the wire can change a verdict: every subject heard is judged the moment it
    is heard (routed or not); a core subscription is judged once it matched, or once
    RELATED_ENOUGH related messages flowed past it; a consumer filter against what its stream
    holds. Anything else (a subscription nothing related has reached yet) waits for the window."""
    flowing = list(counts)
    for conn in server.connections:
        for pattern in conn.subs:
            if pattern.startswith(_INTERNAL) or any(overlap(pattern, s) for s in flowing):
                continue
            if sum(counts[s] for s in flowing if related(pattern, s)) < RELATED_ENOUGH:
                return False
    for cons in server.consumers:
        if cons.stream not in stored and not any(overlap(f, x) for f in cons.filters for x in flowing):
            return False
    return True


async def _stored(nc: Any, server: Server) -> dict[str, list[str]]:
    """The subjects each stream with consumers holds messages on (an empty stream: none; a stream
    holding more than MAX_STORED_SUBJECTS or that cannot be read: not known)."""
    js = nc.jetstream()
    out: dict[str, list[str]] = {}
    for stream in sorted({c.stream for c in server.consumers}):
        if stream in server.held and not server.held[stream]:
            out[stream] = []
        elif server.held.get(stream, 0) <= MAX_STORED_SUBJECTS:
            with contextlib.suppress(Exception):
                out[stream] = sorted((await js.stream_info(stream, subjects_filter=">")).state.subjects or {})
    return out


class Heard:
    """What the sample's subscription hears: messages per subject, and when a new subject came."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last_new = time.perf_counter()

    async def hear(self, msg: Any) -> None:  # nats-py takes a coroutine function, not a callable
        if not msg.subject.startswith(_INTERNAL):
            if msg.subject not in self.counts:
                self.last_new = time.perf_counter()
            self.counts[msg.subject] += 1

    def restart(self) -> None:
        self.counts.clear()
        self.last_new = time.perf_counter()


Ear = tuple[Listening | None, str, Heard]  # an opened subscription (or why not), what it hears


async def open_ear(target: Target) -> Ear:
    """doctor's subscription to every subject, for a sample: (listening or None, why not, heard)."""
    heard = Heard()
    ear, why = await Listening.open(target, heard.hear)
    return ear, why, heard


async def sample(target: Target, window: float, server: Server | None = None,
                 opening: Awaitable[Ear] | None = None) -> tuple[Wire | None, str]:
    """Subscribe to every subject for at most `window` seconds: (what was heard, "") or (None,
    why not). Given the server's connections and consumers, it ends once settled().

    `opening`: the subscription, opened while the server was read. What it heard before is
    dropped once a round trip to the server (flush) shows that everything published before
    this call has reached it: the sample counts only what was published after the server's
    read, as the connections' published counts of the next read do."""
    ear, why, heard = await (opening or open_ear(target))
    if ear is None:
        return None, why
    from nats.errors import Error as NatsError

    try:
        if opening is not None:
            try:
                await ear.nc.flush(timeout=max(1, round(target.timeout)))
            except (NatsError, OSError, TimeoutError) as exc:
                return None, f"NATS did not answer doctor's subscription ({exc or type(exc).__name__})"
            heard.restart()
        started = time.perf_counter()
        stored = await _stored(ear.nc, server) if server is not None else {}
        while (elapsed := time.perf_counter() - started) < window:
            # Until QUIET_S has passed without a new subject, asleep until it would have (a new
            # one moves it); then settled() is asked every 50 ms. Polling every 50 ms
            # throughout ended the sample up to 50 ms after it could have.
            unquiet = heard.last_new + QUIET_S - time.perf_counter()
            await asyncio.sleep(min(unquiet if unquiet > 0 else 0.05, window - elapsed))
            quiet = time.perf_counter() - heard.last_new >= QUIET_S
            if server is not None and quiet and settled(server, heard.counts, stored):
                break
    finally:
        await ear.close()
    if ear.denied:
        return None, ear.why_not
    return Wire(min(window, time.perf_counter() - started), heard.counts, {}, stored), ""


def _publishers(subject: str, n: int, decl: Declared, wire: Wire, server: Server) -> list[str]:
    """Who published `subject`: as declared, else the connection whose count of published
    messages (the server's in_msgs, over a window a little wider than the sample's) comes
    closest above the subject's count; several when that does not tell them apart."""
    named = [p for pattern, pubs in decl.publishes.items() if overlap(subject, pattern) for p in pubs]
    if named:
        return sorted(set(named))
    grew = {c.label: wire.published.get(c.cid, 0) - n for c in server.connections
            if wire.published.get(c.cid, 0) >= n}
    if not grew:
        return []
    best = min(grew.values())
    return sorted(label for label, extra in grew.items() if extra == best)


def judge_wire(wire: Wire, decl: Declared, server: Server, found: list[CheckResult], target: Target) -> None:
    """Subjects nobody hears, and subscriptions / consumer filters that heard nothing related."""
    sampled = f"in a {wire.window:.1f} s sample"
    declared_subjects = decl.subjects()
    for subject, n in sorted(wire.counts.items()):
        if any(overlap(subject, d) for d in declared_subjects):
            continue  # judged as a declared family
        core = [c.label for c in server.connections if any(overlap(subject, s) for s in c.subs)]
        streams = [s for s, subjects in server.streams.items() if any(overlap(subject, x) for x in subjects)]
        if core or streams:
            continue
        pubs = _publishers(subject, n, decl, wire, server)
        by = ", ".join(pubs) if pubs else "an unknown connection"
        r = CheckResult(f"messaging {subject}", "dataflow", component=next(
            (c.service for c in server.connections if c.label in pubs and c.service), None))
        r.data.update(subject=subject, publishers=pubs, messages=n, subscribers=[], streams=[])
        r.rest_on(WIRE, MONITORING)
        r.summary = f"{by} -> nobody · core NATS"
        r.fail(f"{by} published {subject} ({n} message(s) {sampled}); no subscriber and no stream: "
               f"{_consequence(subject)}", _subject_remedy(target, r))
        found.append(r)
    flowing = list(wire.counts)
    for conn in server.connections:
        for pattern in conn.subs:
            if any(overlap(pattern, s) for s in flowing):
                continue
            near = sorted(s for s in flowing if related(pattern, s))
            if not near:
                continue
            r = CheckResult(f"subscription {pattern} ({conn.label})", "dataflow", component=conn.service)
            r.data.update(subject=pattern, subscriber=conn.label, related=near[:5])
            r.rest_on(WIRE, MONITORING)
            prefix = pattern.split("*", 1)[0].split(">", 1)[0].rstrip(".")
            r.summary = f"matched nothing {sampled}"
            r.fail(f"{conn.label} subscribes {pattern}, which matched nothing {sampled} while "
                   f"{', '.join(near[:3])} flowed ({sum(wire.counts[s] for s in near)} message(s)): "
                   "its filter never matches what is published",
                   f"manual step: make {conn.label} subscribe {prefix}.> (or a filter matching "
                   f"{near[0]}) instead of {pattern}")
            found.append(r)
    for cons in server.consumers:
        captured = server.streams.get(cons.stream, [])
        label = f"consumer {cons.stream}/{cons.name}"
        if not any(overlap(f, s) for f in cons.filters for s in captured):
            r = CheckResult(label, "dataflow", component=cons.service)
            r.rest_on(MONITORING)
            r.fail(f"{label} filters {', '.join(cons.filters)}, which matches nothing stream {cons.stream} "
                   f"captures ({', '.join(captured)})",
                   f"manual step: give {label} a filter within {', '.join(captured)}")
            found.append(r)
            continue
        kept = wire.stored.get(cons.stream, [])
        heard = [s for s in flowing if any(overlap(s, x) for x in captured)]
        in_stream = list(dict.fromkeys([*heard, *kept]))
        near = [s for s in in_stream if not any(overlap(f, s) for f in cons.filters)
                and any(related(f, s) for f in cons.filters)]
        if in_stream and near and not any(overlap(f, s) for f in cons.filters for s in in_stream):
            r = CheckResult(label, "dataflow", component=cons.service)
            r.rest_on(WIRE, MONITORING)
            where = f"{sampled} nor in what {cons.stream} holds" if kept else sampled
            r.fail(f"{label} filters {', '.join(cons.filters)}, which matched nothing {where} while "
                   f"{', '.join(near[:3])} flowed into {cons.stream}",
                   f"manual step: give {label} a filter matching {near[0]}")
            found.append(r)


def _consumer_state(server: Server, found: list[CheckResult], target: Target) -> None:
    """Consumers with pending or redelivered messages (trade-ops' own lag check covers its own)."""
    for cons in server.consumers:
        if cons.service and target.is_own_now(cons.service):
            continue
        if cons.lag or cons.redelivered:
            label = f"consumer {cons.stream}/{cons.name}"
            r = CheckResult(label, "dataflow", component=cons.service)
            r.rest_on(MONITORING)
            r.data.update(pending=cons.lag, redelivered=cons.redelivered, ack_pending=cons.ack_pending)
            r.warn(f"{label} has {cons.lag} message(s) pending and {cons.redelivered} redelivered"
                   f"{f' (its service: {cons.service})' if cons.service else ''}",
                   "manual step: see why its service does not acknowledge (its log)")
            found.append(r)


async def check_topology(target: Target, http: httpx.AsyncClient, found: list[CheckResult]) -> None:
    """Fill `found` (its first result: the topology as a whole) with one result per declared
    subject family and per finding of the wire."""
    started = time.perf_counter()
    head = found[0]
    # Where a service may be foreign (trade-ops did not start it), the wire sample's subscription
    # is opened at once, while the server is read and the services' health answers say whose
    # they are: opening it (connect, subscribe, a wait for a permissions violation) was ~50 ms
    # more of every foreign run after them. Closed unused if every service is trade-ops' own.
    opening = asyncio.create_task(open_ear(target)) \
        if target.wire_window > 0 and not all(target.started(c.name) for c in target.services) else None
    try:
        owns, (server, error) = await asyncio.gather(
            asyncio.gather(*(target.is_own(c.name) for c in target.services)), read_server(target, http))
    except BaseException:  # out of its budget: the subscription is not opened for nothing
        if opening is not None:
            opening.cancel()
        raise
    foreign = not all(owns)
    # Sampled after the first read of the server and before the second: each connection's
    # published count then covers every message the sample heard from it.
    wire_task = asyncio.create_task(sample(target, target.wire_window, server, opening)) \
        if foreign and target.wire_window > 0 and server is not None else None
    if wire_task is None and opening is not None:
        ear = (await opening)[0]
        if ear is not None:
            await ear.close()
    decl = declared(target)
    head.rest_on(MONITORING)
    if server is None:
        head.fail(f"NATS monitoring unreachable: {error}", target.up_remedy("nats"))
        return
    unmatched: set[str] = set()
    for subject in decl.subjects():
        r = CheckResult(f"messaging {subject}", "dataflow", data={"subject": subject})
        judge_subject(subject, decl, server, r, unmatched)
        if r.status == "fail":
            r.remedy = _subject_remedy(target, r)
        found.append(r)
    if foreign:
        _consumer_state(server, found, target)
    anonymous = [c.label for c in server.connections if not c.service]
    head.summary = f"{len(server.connections)} connection(s) · {len(decl.subjects())} declared subject(s)"
    if anonymous:  # said once, never a warning per subject
        head.details.append(f"not matched to a service by name or address: {', '.join(anonymous[:8])}"
                            + (" ..." if len(anonymous) > 8 else ""))
    if unmatched:
        head.details.append(f"no connection found for {', '.join(sorted(unmatched))} (by name or address): "
                            "what they consume cannot be checked on the server")
    if not foreign:
        return
    wire_row = CheckResult("messaging wire sample", "dataflow")
    found.append(wire_row)
    if wire_task is None:
        wire_row.skip("--wire-window 0")
        return
    before = {c.cid: c.in_msgs for c in server.connections}
    wire, why = await wire_task
    if wire is None:
        wire_row.skip(why)
        return
    after, _ = await read_server(target, http)
    if after is not None:
        wire.published = {c.cid: c.in_msgs - before.get(c.cid, c.in_msgs) for c in after.connections}
        server = after
    wire_row.rest_on(WIRE)
    wire_row.data.update(window_s=round(wire.window, 2), wire_window_s=target.wire_window)
    wire_row.summary = (f"{sum(wire.counts.values())} message(s) on {len(wire.counts)} subject(s) in "
                        f"{wire.window:.1f} s")
    if wire.window < target.wire_window:
        wire_row.details.append(f"ended before its {target.wire_window:g} s window: every subject heard, "
                                "subscription and consumer filter was judged and no new subject came "
                                f"for {QUIET_S:g} s")
    wire_row.duration_ms = (time.perf_counter() - started) * 1000
    judge_wire(wire, decl, server, found, target)
