"""Containers: what Docker knows of each service, read through the Docker SDK.

For each container of the deployment: its state, exit code, OOMKilled, RestartCount
(with the exit codes of its earlier deaths, from Docker's events), Docker's own health
with its last probe output, and the log tail. Each failure is named as its root cause,
with a command that fixes or shows it:

    exited with a code      the code (and the signal it means); `docker compose up -d SVC`
    OOMKilled               the memory limit it hit; raise mem_limit
    restart loop            restarts and their exit codes; the logs
    probe wrong             Docker says unhealthy while the service answers on its own
                            port: the healthcheck is the cause, not the service

The deployment is a stack `up --runtime docker` started (containers labelled with the
run directory), or a compose project trade-ops did not start (`--compose FILE`: the
project named in the file, its containers found by compose's own label).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from services import env
from trade_ops.compose import DATA, LABEL_RUN_DIR, LABEL_SERVICE
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.stack import Stack

__all__ = ["Deployment", "applies", "check_containers", "compose_deployment", "judge_container"]

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_FILES = "com.docker.compose.project.config_files"
LOOP_RESTARTS = 3  # this many restarts, the last one recent: a restart loop
LOG_LINES = 10


@dataclass(frozen=True)
class Deployment:
    """Where the containers are and how a remedy addresses them."""

    label: str  # the label filter that finds them
    file: Path | None = None  # the compose file of a compose project

    files: tuple[str, ...] = ()  # every file the project was started with (compose records them)

    @property
    def compose(self) -> str | None:
        """`docker compose -f FILE... -p NAME`, for a compose project."""
        if self.file is None:
            return None
        files = " ".join(f"-f {shlex.quote(f)}" for f in self.files or (str(self.file),))
        return f"docker compose {files} -p {self.label.split('=', 1)[1]}"

    def of(self, attrs: dict[str, Any]) -> Deployment:
        """This deployment as one of its containers records it (all its compose files)."""
        labels = attrs.get("Config", {}).get("Labels") or {}
        files = tuple(f for f in str(labels.get(COMPOSE_FILES, "")).split(",") if f)
        return replace(self, files=files) if self.file is not None and files else self

    def up(self, service: str, container: str) -> str:
        return f"{self.compose} up -d {service}" if self.compose else f"docker start {container}"

    def logs(self, service: str, container: str) -> str:
        if self.compose:
            return f"{self.compose} logs --tail 50 {service}"
        return f"docker logs --tail 50 {container}"


def _client(timeout: float) -> Any:
    import docker

    return docker.from_env(timeout=max(5, int(timeout * 5)))


def _project_of(compose: Path) -> str:
    """The compose project of a file, as compose names it: COMPOSE_PROJECT_NAME, else the
    file's `name:`, else its folder's name."""
    import yaml

    if os.environ.get("COMPOSE_PROJECT_NAME"):
        return os.environ["COMPOSE_PROJECT_NAME"].lower()

    try:
        doc = yaml.safe_load(compose.read_text()) or {}
    except (OSError, yaml.YAMLError):
        doc = {}
    name = doc.get("name") if isinstance(doc, dict) else None
    return str(name or compose.resolve().parent.name).lower()


def _deployment(target: Target) -> Deployment | None:
    if target.run_dir.has_state() and target.run_dir.load_state().runtime == "docker":
        return Deployment(f"{LABEL_RUN_DIR}={target.run_dir.path}")
    if target.compose is not None:
        project = _project_of(target.compose)
        return Deployment(f"{COMPOSE_PROJECT}={project}", target.compose)
    return None


def applies(target: Target) -> bool:
    """Whether a Docker deployment may be there to read (no engine is contacted here)."""
    return _deployment(target) is not None


def _service(attrs: dict[str, Any]) -> str:
    labels = attrs.get("Config", {}).get("Labels") or {}
    return str(labels.get(LABEL_SERVICE) or labels.get(COMPOSE_SERVICE) or attrs.get("Name", "?").lstrip("/"))


def _signal_name(code: int) -> str:
    if code > 128:
        try:
            return f" ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return ""


def _host_port(attrs: dict[str, Any], container_port: int | None) -> int | None:
    ports = attrs.get("NetworkSettings", {}).get("Ports") or {}
    for key, bindings in ports.items():
        if container_port is None or key == f"{container_port}/tcp":
            for b in bindings or []:
                if str(b.get("HostPort", "")).isdigit():
                    return int(b["HostPort"])
    return None


def _own_port(attrs: dict[str, Any]) -> int | None:
    """The port the service listens on inside its container (TRADE_OPS_PORT)."""
    for item in attrs.get("Config", {}).get("Env") or []:
        key, _, value = str(item).partition("=")
        if key == env.PORT and value.isdigit():
            return int(value)
    return None


def _answers(url: str, timeout: float) -> int | None:
    """The HTTP status the service gives on the host, or None when nothing answered."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _earlier_exits(client: Any, attrs: dict[str, Any]) -> list[int]:
    """Exit codes of the container's earlier deaths, oldest first, from Docker's events."""
    created = attrs.get("Created", "")[:19]
    try:
        since = int(time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%S")) - time.timezone)
    except ValueError:
        return []
    codes: list[int] = []
    for event in client.events(since=since, until=int(time.time()) + 1, decode=True,
                               filters={"container": attrs["Id"], "event": "die"}):
        code = (event.get("Actor", {}).get("Attributes") or {}).get("exitCode")
        if str(code).lstrip("-").isdigit():
            codes.append(int(str(code)))
    return codes


def judge_container(client: Any, attrs: dict[str, Any], deployment: Deployment, stack: Stack,
                    timeout: float = 1.0) -> CheckResult:
    """One container's check: its state, exits, OOM, restarts, Docker's health, log tail."""
    service = _service(attrs)
    deployment = deployment.of(attrs)
    name = attrs.get("Name", "").lstrip("/")
    component = service if service in stack.components else None
    r = CheckResult(f"container {service}", "processes", component=component)
    st = attrs.get("State", {})
    health = st.get("Health") or {}
    restarts = int(attrs.get("RestartCount", 0))
    code = int(st.get("ExitCode", 0))
    mem = int(attrs.get("HostConfig", {}).get("Memory") or 0)
    r.data.update(container=name, state=st.get("Status"), exit_code=code,
                  oom_killed=bool(st.get("OOMKilled")), restarts=restarts, health=health.get("Status"),
                  memory_limit=mem)
    logs, up = deployment.logs(service, name), deployment.up(service, name)

    def tail() -> list[str]:
        raw: bytes = client.api.logs(attrs["Id"], tail=LOG_LINES)
        return raw.decode(errors="replace").splitlines()

    if st.get("OOMKilled"):
        limit = f"{mem >> 20} MiB" if mem else "its memory limit"
        r.summary = f"OOMKilled (exit {code})"
        r.log_tail = tail()
        raise_it = (f"raise mem_limit of {service} in {deployment.file}" if deployment.file
                    else f"raise the memory limit of {name} (`docker update --memory`)")
        r.fail(f"{service} was OOMKilled: the kernel killed it at {limit} (exit code {code})",
               f"{raise_it}, then {up}")
        return r
    if st.get("Restarting") or (restarts and not st.get("Running")):
        exits = _earlier_exits(client, attrs)
        r.summary = f"restart loop ({restarts} restarts)"
        r.log_tail = tail()
        r.fail(f"{service} is in a restart loop: restarted {restarts} times, exit codes "
               f"{', '.join(map(str, exits[-5:])) or code}{_signal_name(exits[-1] if exits else code)}", logs)
        return r
    if not st.get("Running"):
        r.summary = f"exited ({code})"
        r.log_tail = tail()
        # One command that runs as printed; the log's last lines are shown with the check.
        r.fail(f"container {name} exited with code {code}{_signal_name(code)} (its last log lines: "
               f"`{logs}`)", up)
        return r
    summary = [f"up · {health.get('Status', 'no healthcheck')}"]
    if restarts:
        exits = _earlier_exits(client, attrs)
        last = exits[-1] if exits else None
        said = f", last exit code {last}{_signal_name(last)}" if last is not None else ""
        summary.append(f"{restarts} restart{'s' if restarts > 1 else ''}")
        if restarts >= LOOP_RESTARTS:
            r.log_tail = tail()
            r.fail(f"{service} is in a restart loop: restarted {restarts} times{said}", logs)
        else:
            r.warn(f"{service} exited and was restarted by Docker ({restarts} time"
                   f"{'s' if restarts > 1 else ''}){said}", logs)
    if health.get("Status") == "unhealthy":
        probe = (health.get("Log") or [{}])[-1]
        output = str(probe.get("Output", "")).strip().replace("\n", " ")[:200]
        c = stack.components.get(service)
        port = _host_port(attrs, _own_port(attrs))
        path = c.health_path if c is not None and c.is_service else "/"
        status = _answers(f"http://127.0.0.1:{port}{path}", timeout) if port else None
        if status == 200:
            # Docker's probe fails while the service answers: the probe is what is wrong.
            h = CheckResult(f"docker healthcheck {service}", "configuration")
            h.summary = "probe wrong: the service answers"
            h.data.update(container=name, probe_exit_code=probe.get("ExitCode"), probe_output=output)
            r.data["healthcheck_wrong"] = True
            test = " ".join(attrs.get("Config", {}).get("Healthcheck", {}).get("Test") or [])
            h.fail(f"Docker says {service} is unhealthy, but {service} answers {path} with HTTP 200 on port "
                   f"{port}: its healthcheck is wrong ({test[-80:]!r} -> exit {probe.get('ExitCode')}: "
                   f"{output or 'no output'})",
                   f"fix the healthcheck of {service} to probe "
                   f"http://127.0.0.1:{_own_port(attrs) or port}{path}, then {up}")
            r.summary = " · ".join([*summary, "unhealthy (the probe is wrong, see below)"])
            r.data["extra"] = h
            return r
        r.log_tail = tail()
        r.fail(f"Docker says {service} is unhealthy; last probe exit {probe.get('ExitCode')}: "
               f"{output or 'no output'}", logs)
    r.summary = " · ".join(summary)
    return r


def _find(client: Any, deployment: Deployment) -> list[dict[str, Any]]:
    listed = client.api.containers(all=True, filters={"label": deployment.label})
    return [client.api.inspect_container(c["Id"]) for c in listed]


def _check(target: Target, engine: CheckResult) -> list[CheckResult]:
    import docker.errors
    import requests

    deployment = _deployment(target)
    if deployment is None:
        return []
    try:
        client = _client(target.timeout)
        version = client.version().get("Version")
        found = _find(client, deployment)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if deployment.compose:  # only asked to look: no engine, nothing to say
            engine.status, engine.summary = "skip", f"no Docker engine at {where}"
            return []
        engine.summary = "engine unreachable"
        engine.fail(f"no Docker engine reachable at {where}: {exc}", "start the Docker engine (dockerd)")
        return []
    engine.data.update(version=version, containers=len(found), selector=deployment.label)
    if not found:
        engine.status, engine.summary = "skip", f"engine {version} · no containers with {deployment.label}"
        return []
    engine.summary = f"engine {version} · {len(found)} containers"
    results = []
    for attrs in found:
        r = judge_container(client, attrs, deployment, target.stack, target.timeout)
        extra = r.data.pop("extra", None)
        results.append(r)
        if extra is not None:
            results.append(extra)
    return results


async def check_containers(target: Target, engine: CheckResult, out: list[CheckResult]) -> None:
    """Fill `engine` (the Docker engine's own check) and append one result per container to `out`."""
    out.extend(await asyncio.to_thread(_check, target, engine))


def compose_deployment(stack: Stack, compose: Path, timeout: float = 1.0) -> tuple[Stack, list[str]] | None:
    """A compose project's stack as it runs: host ports from the containers, the lake in its volume.

    None when no engine answers or the project has no running container; else the stack
    (every port as published) and the names of the components it runs.
    """
    import docker.errors
    import requests

    try:
        client = _client(timeout)
        found = _find(client, Deployment(f"{COMPOSE_PROJECT}={_project_of(compose)}"))
    except (docker.errors.DockerException, requests.RequestException):
        return None
    components = dict(stack.components)
    names = []
    base = stack.with_offset(0)
    for attrs in found:
        service = _service(attrs)
        c = base.components.get(service)
        if c is None:
            continue
        names.append(service)
        port = _host_port(attrs, c.port)
        monitor = _host_port(attrs, c.monitor_port) if c.monitor_port else None
        c = replace(c, port=port or c.port, monitor_port=monitor or c.monitor_port)
        components[service] = c
        data = next((m.get("Source") for m in attrs.get("Mounts", []) if m.get("Destination") == DATA), None)
        lake = stack.first("lake")
        if c.is_service and data and lake is not None and not lake.uri and Path(data).is_dir():
            components[lake.name] = replace(lake, uri=str(Path(data) / "lake"))
    if not names:
        return None
    return replace(stack, components=components), names
