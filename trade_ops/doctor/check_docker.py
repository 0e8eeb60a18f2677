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
import signal
import time
import urllib.error
import urllib.request
from typing import Any

from services import env
from trade_ops.doctor.compose_target import (
    COMPOSE_PROJECT,
    Deployment,
    compose_project,
    container_service,
    engine_client,
    find_containers,
    host_port,
)
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.stack import Stack

__all__ = ["check_containers", "judge_container"]

LOOP_RESTARTS = 3  # this many restarts, the last one recent: a restart loop
LOG_LINES = 10


def _deployment(target: Target) -> Deployment | None:
    if target.containers is not None:  # the stack trade-ops started here, as containers
        return Deployment(target.containers)
    if target.compose is not None:
        project = compose_project(target.compose)
        return Deployment(f"{COMPOSE_PROJECT}={project}", target.compose)
    return None


def _signal_name(code: int) -> str:
    if code > 128:
        try:
            return f" ({signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return ""


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


def _one_shot(attrs: dict[str, Any]) -> bool:
    """A container that is never restarted: exiting is its end, not a death."""
    policy = (attrs.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name") or "no"
    return bool(policy == "no")


def judge_container(client: Any, attrs: dict[str, Any], deployment: Deployment, stack: Stack,
                    timeout: float = 1.0) -> CheckResult:
    """One container's check: its state, exits, OOM, restarts, Docker's health, log tail."""
    service = container_service(attrs)
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
    if not st.get("Running") and code == 0 and _one_shot(attrs):
        r.summary = "completed (exit 0)"  # a job that ran once, as compose's topology one-shot
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
        port = host_port(attrs, _own_port(attrs))
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


def _check(target: Target, engine: CheckResult) -> list[CheckResult]:
    import docker.errors
    import requests

    deployment = _deployment(target)
    if deployment is None:
        return []
    try:
        client = engine_client(target.timeout)
        version = client.version().get("Version")
        found = find_containers(client, deployment)
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
