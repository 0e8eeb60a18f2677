"""The stack definition: one source for `up`, `doctor`, `bench` and compose.yaml.

The shipped `stack.toml` is the default; a user file is merged over it key by key, so
a deployment overrides only what differs. A port offset shifts every port at once, so
a second stack (or a test run) can live beside a running one.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from services import env as names
from trade_ops.errors import StackFileError, UsageError

__all__ = ["LAKE_DIR", "Component", "Stack", "load_stack"]

LAKE_DIR = "lake"  # the lake in a run directory, when the stack points it nowhere else (RunDir.lake)

Kind = Literal["valkey", "nats", "lake", "service"]
INFRA_KINDS = ("valkey", "nats", "lake")


@dataclass(frozen=True)
class Component:
    """One piece of the stack: an infrastructure server, the lake, or a service."""

    name: str
    kind: Kind
    port: int | None = None
    monitor_port: int | None = None  # nats only: HTTP monitoring, where a stack file opens it
    host: str = "127.0.0.1"
    depends_on: tuple[str, ...] = ()
    app: str | None = None  # services: "package.module:attribute"
    command: tuple[str, ...] = ()
    live_path: str = "/livez"
    health_path: str = "/health"
    url: str | None = None  # a remote service: overrides host and port
    uri: str = ""  # lake only
    env: dict[str, str] = field(default_factory=dict)
    enabled: bool = True  # false: `up` starts it only when named in --only (like compose profiles)
    nice: int = 0  # scheduling priority (0..19): background consumers yield the CPU to order entry
    # How a service that trade-ops did not start is run, so doctor's remedies apply there.
    compose_file: str | None = None
    compose_service: str | None = None
    container: str | None = None
    pid: int | None = None  # a process trade-ops did not start (chaos stops it by signal)
    # Subject families a service publishes and consumes (for doctor's messaging topology).
    publishes: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()

    @property
    def is_service(self) -> bool:
        return self.kind == "service"

    @property
    def base_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def exists(self) -> bool:
        """Whether this service's code is present (the supervisor starts only these)."""
        if not self.is_service or not self.app:
            return True
        module = self.app.split(":", 1)[0]
        try:
            return find_spec(module) is not None
        except ModuleNotFoundError:
            return False

    def start_command(self) -> list[str]:
        values = {"python": sys.executable, "name": self.name, "app": self.app or "",
                  "port": str(self.port), "host": self.host}
        return [part.format(**values) for part in self.command]


@dataclass(frozen=True)
class Stack:
    components: dict[str, Component]
    offset: int = 0
    source: str = "builtin"
    # [contracts.order] / [contracts.risk]: the field names a deployment's OMS and risk read.
    contracts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The components the user file names: a file describing a deployment trade-ops did not
    # start is examined for exactly these (the builtin's others are not there).
    named: frozenset[str] = frozenset()

    # -- views --------------------------------------------------------------------
    @property
    def infra(self) -> list[Component]:
        return [c for c in self.components.values() if not c.is_service]

    @property
    def services(self) -> list[Component]:
        return [c for c in self.components.values() if c.is_service]

    def __getitem__(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            known = ", ".join(self.components)
            raise UsageError(f"unknown component {name!r}; known: {known}") from None

    def first(self, kind: Kind) -> Component | None:
        return next((c for c in self.components.values() if c.kind == kind), None)

    # -- graph --------------------------------------------------------------------
    def closure(self, names: Iterable[str]) -> list[str]:
        """The named components and everything they depend on, in start order."""
        wanted: set[str] = set()
        stack = [self[n].name for n in names]
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self[name].depends_on)
        return [n for n in self.start_order() if n in wanted]

    def start_order(self) -> list[str]:
        """Topological order: every component after the ones it depends on."""
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = " -> ".join((*path, name))
                raise StackFileError(f"dependency cycle in the stack: {cycle}")
            state[name] = 1
            for dep in self[name].depends_on:
                visit(dep, (*path, name))
            state[name] = 2
            order.append(name)

        for name in self.components:
            visit(name, ())
        return order

    def dependents(self, name: str) -> list[str]:
        """Every component that depends on `name`, directly or through others."""
        out: list[str] = []
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for c in self.components.values():
                if current in c.depends_on and c.name not in out:
                    out.append(c.name)
                    frontier.append(c.name)
        return out

    # -- deployment ---------------------------------------------------------------
    def with_offset(self, offset: int) -> Stack:
        """The same stack with every local port shifted by `offset` (relative to 0)."""
        delta = offset - self.offset

        def shift(port: int | None) -> int | None:
            return None if port is None else port + delta

        moved = {n: replace(c, port=shift(c.port), monitor_port=shift(c.monitor_port))
                 for n, c in self.components.items()}
        return replace(self, components=moved, offset=offset)

    def lake_uri(self, run_dir: Path) -> str:
        """The lake's URI: where the stack points it, else the run directory's lake/ (RunDir.lake)."""
        lake = self.first("lake")
        if lake and lake.uri:
            return lake.uri
        return str((run_dir / LAKE_DIR).resolve())

    def valkey_url(self) -> str:
        v = self.first("valkey")
        return f"redis://{v.host}:{v.port}/0" if v else "redis://127.0.0.1:6379/0"

    def nats_url(self) -> str:
        n = self.first("nats")
        return f"nats://{n.host}:{n.port}" if n else "nats://127.0.0.1:4222"

    def nats_monitor_url(self) -> str | None:
        """NATS's HTTP monitoring, where the stack opens it (None: it opens none)."""
        n = self.first("nats")
        return f"http://{n.host}:{n.monitor_port}" if n and n.monitor_port else None

    def service_env(self, name: str, run_dir: Path) -> dict[str, str]:
        """The environment a service process is started with: where everything is."""
        svc = self[name]
        env = {
            names.SERVICE: name,
            names.HOST: svc.host,
            names.PORT: str(svc.port),
            names.VALKEY_URL: self.valkey_url(),
            names.NATS_URL: self.nats_url(),
            names.LAKE_URI: self.lake_uri(run_dir),
            names.RUN_DIR: str(run_dir.resolve()),
        }
        for other in self.services:
            env[url_env_var(other.name)] = other.base_url
        env.update(svc.env)
        return env


def url_env_var(service: str) -> str:
    """`TRADE_OPS_URL_LIVE_GATEWAY` for `live-gateway`: how a service finds another."""
    return names.url_var(service)


# -- loading --------------------------------------------------------------------------
def _builtin_text() -> str:
    return resources.files("trade_ops").joinpath("stack.toml").read_text()


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# A stack file is a few KB; the read stops past this (`--stack /dev/zero` was a MemoryError).
MAX_STACK_BYTES = 1 << 20


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_STACK_BYTES + 1)
        if len(raw) > MAX_STACK_BYTES:
            raise StackFileError(f"stack file {path} is larger than {MAX_STACK_BYTES >> 20} MiB: "
                                 "is it a stack file?")
        return tomllib.loads(raw.decode())
    except FileNotFoundError:
        raise StackFileError(f"stack file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StackFileError(f"stack file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StackFileError(f"stack file {path} is not valid TOML: {exc}") from None


def _port(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"a port is a number, not {_what(value)}")
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"a port is 1..65535, not {port}")
    return port


def _nice(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"nice is a number 0..19, not {_what(value)}")
    nice = value
    if not 0 <= nice <= 19:  # below 0 needs root; the stack must start as any user
        raise ValueError(f"nice must be 0..19, not {nice}")
    return nice


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


_TYPE_NAMES = {dict: "a table", list: "a list", str: "a string", bool: "true or false", int: "a number",
               float: "a number"}


def _what(value: Any) -> str:
    return f"{_TYPE_NAMES.get(type(value), type(value).__name__)} ({value!r:.40})"


def _table(value: Any, where: str) -> dict[str, Any]:
    """`value` when it is a TOML table, else a StackFileError naming where and what it is."""
    if not isinstance(value, dict):
        raise StackFileError(f"stack file: {where} must be a table, not {_what(value)}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ValueError(f"{where} must be a list of strings, not {_what(value)}")
    return tuple(str(v) for v in value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):  # "no" is a non-empty string: it was counted as enabled
        raise ValueError(f"{where} must be true or false, not {_what(value)}")
    return value


def _component(name: str, raw: Any, defaults: dict[str, Any], kind: str) -> Component:
    where = f"[{'services' if kind == 'service' else 'infra'}.{name}]"
    merged = {**defaults, **_table(raw, where)}
    try:
        return Component(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            port=_port(merged.get("port")),
            monitor_port=_port(merged.get("monitor_port")),
            host=str(merged.get("host", "127.0.0.1")),
            depends_on=_strings(merged.get("depends_on", []), "depends_on"),
            app=merged.get("app"),
            command=_strings(merged.get("command", []), "command") if kind == "service" else (),
            live_path=str(merged.get("live_path", "/livez")),
            health_path=str(merged.get("health_path", "/health")),
            url=merged.get("url"),
            uri=str(merged.get("uri", "")),
            env={str(k): str(v) for k, v in _table(merged.get("env", {}), f"{where} env").items()},
            enabled=_bool(merged.get("enabled", True), "enabled"),
            nice=_nice(merged.get("nice", 0)),
            compose_file=_opt_str(raw.get("compose_file", defaults.get("compose_file"))),
            compose_service=_opt_str(raw.get("compose_service")),
            container=_opt_str(raw.get("container")),
            pid=int(raw["pid"]) if raw.get("pid") is not None else None,
            publishes=_strings(raw.get("publishes", []), "publishes"),
            consumes=_strings(raw.get("consumes", []), "consumes"),
        )
    except (TypeError, ValueError) as exc:
        raise StackFileError(f"stack entry {name!r} is malformed: {exc}") from None


def _derived_needs(c: Component, components: dict[str, Component]) -> tuple[str, ...]:
    """This project's services: depends_on from what they declare in services.contract
    (infrastructure named by kind, so an infra entry may have any name)."""
    from services import contract

    if c.name not in contract.TOPOLOGY or not (c.app or "").startswith("services."):
        return c.depends_on
    by_kind: dict[str, str] = {k.kind: k.name for k in reversed(components.values()) if not k.is_service}
    needed = (by_kind.get(n, n) for n in contract.depends_on(c.name))
    return tuple(n for n in needed if n in components)


def parse_stack(data: dict[str, Any], source: str) -> Stack:
    """The stack a parsed file describes; any shape it does not expect is a StackFileError."""
    defaults = _table(data.get("defaults", {}), "[defaults]")
    infra = _table(data.get("infra", {}), "[infra]")
    services = _table(data.get("services", {}), "[services]")
    contracts_table = _table(data.get("contracts", {}), "[contracts]")
    components: dict[str, Component] = {}
    for name, raw in infra.items():
        kind = _table(raw, f"[infra.{name}]").get("kind", name)
        if kind not in INFRA_KINDS:
            raise StackFileError(f"infra {name!r} has unknown kind {kind!r}")
        infra_defaults = {"host": defaults.get("host", "127.0.0.1")}
        components[name] = _component(name, raw, infra_defaults, kind)
    for name, raw in services.items():
        if name in components:
            raise StackFileError(f"{name!r} is both infrastructure and a service")
        components[name] = _component(name, raw, defaults, "service")
    for name, raw in services.items():
        if "depends_on" not in raw:
            components[name] = replace(components[name], depends_on=_derived_needs(components[name],
                                                                                   components))
    contracts = {str(k): dict(v) for k, v in contracts_table.items() if isinstance(v, dict)}
    stack = Stack(components=components, source=source, contracts=contracts)
    for c in components.values():
        for dep in c.depends_on:
            if dep not in components:
                raise StackFileError(f"{c.name!r} depends on unknown component {dep!r}")
    stack.start_order()  # raises on a cycle
    return stack


def load_stack(path: Path | str | None = None, *, offset: int = 0) -> Stack:
    """The builtin stack, with the user file at `path` merged over it, shifted by offset."""
    data = tomllib.loads(_builtin_text())
    source = "builtin"
    named: frozenset[str] = frozenset()
    if path:
        user = _read_toml(Path(path))
        data = _merge(data, user)
        source = str(path)
        named = frozenset(n for part in ("infra", "services") if isinstance(user.get(part), dict)
                          for n in user[part])
    return replace(parse_stack(data, source), named=named).with_offset(offset)
