"""Finding a Docker deployment: what `build_target` reads of a compose project trade-ops did
not start (its host ports and its lake, from its containers), and how a remedy addresses a
deployment's containers. The checks of the containers are check_docker.py's.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trade_ops.compose import DATA, LABEL_SERVICE
from trade_ops.stack import Stack

__all__ = ["COMPOSE_FILES", "COMPOSE_PROJECT", "COMPOSE_SERVICE", "Deployment", "compose_deployment",
           "compose_project", "container_service", "engine_client", "find_containers", "host_port"]

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_FILES = "com.docker.compose.project.config_files"


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


def engine_client(timeout: float) -> Any:
    import docker

    return docker.from_env(timeout=max(5, int(timeout * 5)))


def compose_project(compose: Path) -> str:
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


def container_service(attrs: dict[str, Any]) -> str:
    labels = attrs.get("Config", {}).get("Labels") or {}
    return str(labels.get(LABEL_SERVICE) or labels.get(COMPOSE_SERVICE) or attrs.get("Name", "?").lstrip("/"))



def host_port(attrs: dict[str, Any], container_port: int | None) -> int | None:
    ports = attrs.get("NetworkSettings", {}).get("Ports") or {}
    for key, bindings in ports.items():
        if container_port is None or key == f"{container_port}/tcp":
            for b in bindings or []:
                if str(b.get("HostPort", "")).isdigit():
                    return int(b["HostPort"])
    return None


def find_containers(client: Any, deployment: Deployment) -> list[dict[str, Any]]:
    listed = client.api.containers(all=True, filters={"label": deployment.label})
    return [client.api.inspect_container(c["Id"]) for c in listed]


def compose_deployment(stack: Stack, compose: Path, timeout: float = 1.0) -> tuple[Stack, list[str]] | None:
    """A compose project's stack as it runs: host ports from the containers, the lake in its volume.

    None when no engine answers or the project has no running container; else the stack
    (every port as published) and the names of the components it runs.
    """
    import docker.errors
    import requests

    try:
        client = engine_client(timeout)
        found = find_containers(client, Deployment(f"{COMPOSE_PROJECT}={compose_project(compose)}"))
    except (docker.errors.DockerException, requests.RequestException):
        return None
    components = dict(stack.components)
    names = []
    base = stack.with_offset(0)
    for attrs in found:
        service = container_service(attrs)
        c = base.components.get(service)
        if c is None:
            continue
        names.append(service)
        port = host_port(attrs, c.port)
        monitor = host_port(attrs, c.monitor_port) if c.monitor_port else None
        c = replace(c, port=port or c.port, monitor_port=monitor or c.monitor_port)
        components[service] = c
        data = next((m.get("Source") for m in attrs.get("Mounts", []) if m.get("Destination") == DATA), None)
        lake = stack.first("lake")
        if c.is_service and data and lake is not None and not lake.uri and Path(data).is_dir():
            components[lake.name] = replace(lake, uri=str(Path(data) / "lake"))
    if not names:
        return None
    return replace(stack, components=components), names
