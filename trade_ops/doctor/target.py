"""What doctor examines: the stack, which of its components, where they answer, whose they are.

A service is trade-ops' **own** when trade-ops started it (a process or container of the
run directory) or when it says so (its /health `description` or OpenAPI `info.description`
is services.kit.health.OWN_DESCRIPTION); every other service is **foreign**, and only its
evidence speaks for it. Checks that apply trade-ops' model await `is_own(name)`, which
the service check settles as soon as the health body is read.

Three ways in, and the remedies follow from which one:

    supervised   a run directory holding state.json: what trade-ops started there (and
                 what that depends on); remedies are `trade-ops up/logs --run-dir ...`
    stack file   without state: every enabled component of the stack file, at the URLs
                 it gives; a `compose_file` / `container` key says how a service is run
    explicit     `--url SVC=URL`, `--valkey`, `--nats`, `--nats-monitor`, `--lake`: exactly
                 what was named, nothing at a default port; remedies are `curl` of the
                 failing URL and manual steps, never `trade-ops up` (trade-ops runs nothing there)
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from trade_ops.context import Context
from trade_ops.doctor.model import TargetSeen
from trade_ops.errors import UsageError
from trade_ops.nats_system import SystemLogin
from trade_ops.rundir import RunDir
from trade_ops.stack import Component, Stack

__all__ = ["Explicit", "HostSockets", "Process", "Target", "build_target", "parse_urls", "processes_of"]

# This host's TCP sockets: (local port, remote port) -> pids holding it, pid -> ports it listens on
HostSockets = tuple[dict[tuple[int, int], set[int]], dict[int, set[int]]]


@dataclass
class Process:
    """One supervised process, as the supervisor (or state.json) reports it."""

    name: str
    kind: str
    pid: int
    port: int | None
    state: str  # running | dead | suspended
    alive: bool
    restarts: int
    log: Path
    started_at: float = 0.0


@dataclass
class Explicit:
    """What the command line named: with any of it, doctor examines exactly that."""

    urls: dict[str, str] = field(default_factory=dict)
    valkey: str | None = None
    nats: str | None = None
    nats_monitor: str | None = None
    lake: str | None = None

    def __bool__(self) -> bool:
        return bool(self.urls or self.valkey or self.nats or self.nats_monitor or self.lake)


@dataclass
class Target:
    stack: Stack
    run_dir: RunDir
    services: list[Component]
    infra: list[Component]
    processes: dict[str, Process] = field(default_factory=dict)
    compose: Path | None = None
    timeout: float = 1.0
    account: str = "doctor"
    explicit: bool = False  # built from --url/--valkey/--nats flags: exactly what was named
    nats_monitor: str | None = None  # where NATS's HTTP monitoring answers (None: not examined)
    # trade-ops' own NATS: its monitoring asked as the operator's system user (monitoring.py)
    nats_system: SystemLogin | None = None
    lake_uri: str | None = None
    stack_flag: str | None = None  # the --stack FILE to repeat in `trade-ops` remedies
    contacted: set[str] = field(default_factory=set)  # every host:port doctor opened, for the record
    trade: bool | None = None  # --trade / --no-trade; None: only on a stack trade-ops started
    order: dict[str, Any] = field(default_factory=dict)  # --order FIELD=VALUE: the round trip's fields
    reconcile_window: int = 10_000  # the last N messages of the fills stream; 0: no reconciliation
    # the Docker label filter of the containers of the stack trade-ops started here (up --runtime
    # docker); None when it runs none
    containers: str | None = None
    wire_window: float = 2.0  # seconds of NATS traffic sampled on a foreign deployment (0: none)
    said_own: dict[str, bool] = field(default_factory=dict)  # what each service's evidence says
    _heard: dict[str, asyncio.Event] = field(default_factory=dict)
    monitor_session: Any = None  # the run's system-account connection (monitoring.py)
    host_sockets: HostSockets | None = None  # this host's TCP sockets, as last read (check_topology.py)
    # Where the CLI's own Valkey and NATS logins are kept for this deployment (credentials.json):
    # the run directory, or a compose project's directory beside its ./secrets. None: the run
    # directory's.
    logins_dir: Path | None = None

    @property
    def logins(self) -> Path:
        return self.logins_dir or self.run_dir.path

    @property
    def may_trade(self) -> bool:
        """Doctor places orders only where trading is allowed: by default, on its own stack."""
        return self.trade if self.trade is not None else self.supervised

    @property
    def names(self) -> set[str]:
        return {c.name for c in (*self.services, *self.infra)}

    @property
    def docker(self) -> bool:
        """Whether a Docker deployment may be there to read (check_docker.py; no engine is
        contacted here): the containers trade-ops started, or a compose project named."""
        return self.containers is not None or self.compose is not None

    @property
    def supervised(self) -> bool:
        return bool(self.processes) or self.containers is not None

    # -- own or foreign -----------------------------------------------------------------------
    def started(self, name: str) -> bool:
        """trade-ops started it: a process or container of this run directory."""
        return name in self.processes or (self.containers is not None and name in self.stack.components)

    def identify(self, name: str, own: bool) -> None:
        """What the service's own evidence says (called once its /health is read, or failed)."""
        self.said_own[name] = own
        self._heard.setdefault(name, asyncio.Event()).set()

    def is_own_now(self, name: str) -> bool:
        return self.started(name) or self.said_own.get(name, False)

    async def is_own(self, name: str) -> bool:
        """Whether trade-ops' model applies to `name`: waits (bounded) for its health answer."""
        if self.started(name) or name not in {c.name for c in self.services}:
            return self.started(name)
        event = self._heard.setdefault(name, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 2 * self.timeout + 0.5)
        return self.said_own.get(name, False)

    @property
    def own(self) -> set[str]:
        """The components trade-ops' model applies to: its own services and infrastructure
        (the infrastructure has no edges of its own)."""
        return {c.name for c in self.services if self.is_own_now(c.name)} | {c.name for c in self.infra}

    def has(self, *names: str) -> bool:
        return all(n in self.names for n in names)

    def component(self, name: str) -> Component | None:
        return next((c for c in (*self.services, *self.infra) if c.name == name), None)

    def address(self, name: str) -> str | None:
        """The address doctor probes for a component: what reports show."""
        c = self.component(name)
        if c is None:
            return None
        if c.is_service:
            return c.base_url
        if c.kind == "lake":
            return self.lake_uri
        if c.kind == "nats" and c.port is None:
            return self.nats_monitor
        return f"{c.host}:{c.port}"

    def directory(self) -> dict[str, str]:
        """Canonical host:port -> the component doctor examines there (the lake: its S3
        endpoint): how an address in an error text is matched to a component."""
        from trade_ops.doctor.evidence import address_of, canonical
        from trade_ops.doctor.lake_probe import endpoint

        out: dict[str, str] = {}
        for c in (*self.services, *self.infra):
            if c.is_service:
                found = address_of(c.base_url)
            elif c.kind == "lake":
                found = endpoint(self.lake_uri) if self.lake_uri else None
                found = address_of(found) if found else None
            else:
                found = canonical(c.host, c.port) if c.port else None
                if c.kind == "nats" and self.nats_monitor:
                    monitor = address_of(self.nats_monitor)
                    if monitor:
                        out[monitor] = c.name
            if found:
                out[found] = c.name
        return out

    # -- remedies: commands that run for this deployment as it is ----------------------------
    def flags(self) -> str:
        """The flags that point a `trade-ops` command at this run directory / stack file."""
        return self._trade_ops_flags()

    def _trade_ops_flags(self) -> str:
        # a run directory found the way every command finds it needs no flag; a named one does
        flags = "" if self.run_dir.searched else f" --run-dir {shlex.quote(str(self.run_dir.path))}"
        if self.stack_flag and not self.supervised:
            flags += f" --stack {shlex.quote(self.stack_flag)}"
        return flags

    @property
    def foreign_deployment(self) -> bool:
        """Named by flags, or a stack file that points at services trade-ops does not run."""
        return self.explicit or any(c.url or c.compose_file or c.container for c in self.stack.services)

    def _trade_ops_runs(self, name: str) -> bool:
        """trade-ops starts this component here: supervised, or its own local stack (no urls):
        never a component of a deployment trade-ops did not start."""
        if name in self.processes or self.containers is not None:
            return True
        c = self.stack.components.get(name)
        return not self.foreign_deployment and c is not None and not c.compose_file \
            and not c.container and (not c.is_service or c.exists())

    def _compose(self, c: Component) -> str:
        return f"docker compose -f {shlex.quote(str(c.compose_file))}"

    def up_remedy(self, name: str) -> str:
        """The command that starts `name` again where it runs."""
        c = self.stack.components.get(name)
        if self._trade_ops_runs(name):
            return f"trade-ops up --only {name}{self._trade_ops_flags()}"
        if c is not None and c.compose_file:
            return f"{self._compose(c)} up -d {c.compose_service or name}"
        if c is not None and c.container:
            return f"docker start {shlex.quote(c.container)}"
        where = self.address(name) or (c.base_url if c is not None and c.is_service else name)
        return f"manual step: start {name} where it runs ({where}); trade-ops does not run it here"

    def logs_remedy(self, name: str, answers: bool = True) -> str:
        """The command that shows why `name` misbehaves where it runs (`answers`: it answers
        HTTP, so where trade-ops runs nothing, its own answer is the thing to see)."""
        c = self.stack.components.get(name)
        if self._trade_ops_runs(name):
            return f"trade-ops logs {name}{self._trade_ops_flags()}"
        if c is not None and c.compose_file:
            return f"{self._compose(c)} logs --tail 50 {c.compose_service or name}"
        if c is not None and c.container:
            return f"docker logs --tail 50 {shlex.quote(c.container)}"
        if not answers:
            where = self.address(name) or name
            return (f"manual step: see the log of {name} ({where} does not answer); "
                    "trade-ops does not run it here")
        return self.probe_remedy(name)

    def curl(self, url: str) -> str:
        """A curl that shows an answer and never hangs (a suspended server holds a plain curl)."""
        return f"curl -sS -m {max(2, round(self.timeout * 3))} {shlex.quote(url)}"

    def probe_remedy(self, name: str, path: str | None = None) -> str:
        """Where trade-ops runs nothing: see the failing answer for yourself."""
        c = self.component(name) or self.stack.components.get(name)
        if c is not None and c.is_service:
            return self.curl(c.base_url + (path or c.health_path))
        if c is not None and c.kind == "valkey":
            return f"manual step: start the valkey at {c.host}:{c.port} (trade-ops does not run it here)"
        if c is not None and c.kind == "nats":
            monitor = self.nats_monitor or (None if self.explicit else self.stack.nats_monitor_url())
            if monitor:
                return self.curl(monitor + "/healthz")
            return f"manual step: start the NATS server at {c.host}:{c.port} (trade-ops does not run it here)"
        return f"manual step: check {name} (trade-ops does not run it here)"

    def describe(self) -> TargetSeen:
        return TargetSeen(stack=self.stack.source, offset=None if self.explicit else self.stack.offset,
                          run_dir=str(self.run_dir.path), supervised=self.supervised, explicit=self.explicit,
                          own=sorted(c.name for c in self.services if self.is_own_now(c.name)),
                          foreign=sorted(c.name for c in self.services if not self.is_own_now(c.name)),
                          urls={c.name: self.address(c.name) for c in (*self.infra, *self.services)},
                          contacted=sorted(self.contacted))


def _url(flag: str, value: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise UsageError(f"{flag} {value!r}: {exc}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise UsageError(f"{flag} {value!r}: expected {schemes[0]}://host:port")
    return value.rstrip("/")


def parse_urls(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name.strip() or not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {pair!r}: expected SERVICE=http://host:port")
        out[name.strip()] = _url("--url", url.strip(), ("http", "https"))
    return out


def processes_of(run_dir: RunDir) -> dict[str, Process]:
    """The recorded processes and whether each still runs (readiness is doctor's own job)."""
    if not run_dir.has_state():
        return {}
    from trade_ops.processes import find_ours

    state = run_dir.load_state()
    out: dict[str, Process] = {}
    for name, rec in state.processes.items():
        proc = find_ours(rec.pid, rec.started_at, rec.command)
        status = "dead" if proc is None else "running"
        with contextlib.suppress(Exception):
            if proc is not None and proc.status() == "stopped":
                status = "suspended"  # SIGSTOP: alive, holds its port, answers nothing
        out[name] = Process(name, rec.kind, rec.pid, rec.port, status, proc is not None,
                            rec.restarts, Path(rec.log), rec.started_at)
    return out


def _explicit_infra(stack: Stack, flags: Explicit) -> tuple[list[Component], str | None]:
    """valkey, nats and the lake as the flags name them (none of them otherwise)."""
    out: list[Component] = []
    monitor = None
    if flags.valkey:
        u = urlsplit(_url("--valkey", flags.valkey, ("redis", "rediss", "valkey")))
        out.append(replace(stack.first("valkey") or Component("valkey", "valkey"),
                           host=u.hostname or "127.0.0.1", port=u.port or 6379))
    if flags.nats or flags.nats_monitor:
        base = stack.first("nats") or Component("nats", "nats")
        host, port, mport = base.host, None, None
        if flags.nats:
            u = urlsplit(_url("--nats", flags.nats, ("nats", "tls")))
            host, port = u.hostname or host, u.port or 4222
        if flags.nats_monitor:
            monitor = _url("--nats-monitor", flags.nats_monitor, ("http", "https"))
            mport = urlsplit(monitor).port
        out.append(replace(base, host=host, port=port, monitor_port=mport))
    if flags.lake:
        out.append(replace(stack.first("lake") or Component("lake", "lake"), uri=flags.lake))
    return out, monitor


def _system_login(stack: Stack, run_dir: RunDir, processes: dict[str, Process], containers: str | None,
                  compose: Path | None, running: list[str] | None) -> SystemLogin | None:
    """The operator's system-account login, only for a NATS trade-ops' credentials were made
    for: the one it started here, or a compose project's beside its ./secrets (written by
    compose_secrets.py). Never sent to a NATS that only sits at the stack's address."""
    from trade_ops import credentials

    nats = stack.first("nats")
    name = nats.name if nats is not None else "nats"
    if name in processes or containers is not None:
        return credentials.system_login(run_dir.path, stack.nats_url())
    if running is not None and name in running and compose is not None:
        return credentials.system_login(compose.resolve().parent, stack.nats_url())
    return None


def build_target(ctx: Context, urls: dict[str, str] | None = None, timeout: float = 1.0,
                 compose: Path | None = None, flags: Explicit | None = None) -> Target:
    flags = flags or Explicit(urls=dict(urls or {}))
    if urls:
        flags.urls = {**flags.urls, **urls}
    run_dir, stack, stack_file = ctx.run_dir, ctx.stack, ctx.stack_file
    for name in flags.urls:
        if name not in stack.components or not stack.components[name].is_service:
            known = ", ".join(c.name for c in stack.services)
            raise UsageError(f"--url {name}=...: no service {name!r} in the stack; known: {known}")
    if flags.urls:
        stack = replace(stack, components={
            n: replace(c, url=flags.urls[n]) if n in flags.urls else c for n, c in stack.components.items()})
    if compose is None:
        default = Path("compose.yaml")
        compose = default if default.is_file() and not flags else None
    if flags:  # exactly what was named: on a shared host, nothing else is anyone's business
        infra, monitor = _explicit_infra(stack, flags)
        services = [stack.components[n] for n in flags.urls]
        lake = next((c.uri for c in infra if c.kind == "lake"), None)
        return Target(stack=stack, run_dir=run_dir, services=services, infra=infra, compose=compose,
                      timeout=timeout, explicit=True, nats_monitor=monitor, lake_uri=lake,
                      stack_flag=str(stack_file) if stack_file else None)
    processes = processes_of(run_dir)
    containers = ctx.runtime.containers(run_dir) if run_dir.has_state() else None
    running: list[str] | None = None
    if not processes and not containers and compose is not None:
        # a compose project trade-ops did not start: its ports and lake as its containers have them
        from trade_ops.doctor.compose_target import compose_deployment  # compose's imports, only here

        found = compose_deployment(stack, compose, timeout)
        if found is not None:
            stack, running = found
    if running is not None:
        wanted = set(running) | {c.name for c in stack.infra if c.kind == "lake"}
    elif not processes and not containers and any(c.url or c.container for c in stack.services):
        # A stack file describing a deployment trade-ops did not start: exactly what it names
        # (the builtin's other services and default-port infrastructure are not there).
        wanted = {n for n in stack.named if n in stack.components}
    elif processes:
        chosen = set(processes) | {c.name for c in stack.services if c.url}
        chosen = {n for n in chosen if n in stack.components}
        wanted = set(stack.closure(chosen))
    else:
        enabled = [c.name for c in stack.services if c.enabled]
        wanted = set(stack.closure(enabled)) | {c.name for c in stack.infra}
    services = [c for c in stack.services if c.name in wanted]
    infra = [c for c in stack.infra if c.name in wanted]
    has_nats = any(c.kind == "nats" for c in infra)
    has_lake = any(c.kind == "lake" for c in infra)
    return Target(stack=stack, run_dir=run_dir, services=services, infra=infra, processes=processes,
                  compose=compose, timeout=timeout, containers=containers,
                  nats_monitor=stack.nats_monitor_url() if has_nats else None,
                  nats_system=_system_login(stack, run_dir, processes, containers, compose, running)
                  if has_nats else None,
                  lake_uri=stack.lake_uri(run_dir.path) if has_lake else None,
                  stack_flag=str(stack_file) if stack_file else None,
                  logins_dir=compose.resolve().parent if running is not None and compose else None)
