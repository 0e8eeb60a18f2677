"""compose.yaml, generated from the stack: the same stack on Docker with official images.

    python -m trade_ops.compose > compose.yaml

valkey and nats run from their official images (nats with JetStream); the 14 services
from one image built on the official python image, each `python -m services NAME`.
Every healthcheck probes the service's own port and health path from the stack, so
the file cannot drift into probing the wrong port (tests/test_compose.py checks it).
"""

from __future__ import annotations

import sys
import textwrap
from typing import Any

import yaml

from trade_ops.stack import Component, Stack, load_stack, url_env_var

__all__ = ["compose_document", "render"]

VALKEY_IMAGE = "valkey/valkey:8-alpine"
NATS_IMAGE = "nats:2-alpine"  # the alpine variant has wget for its healthcheck
SERVICE_IMAGE = "trade-ops-services:local"
DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY trade_ops trade_ops
COPY services services
COPY scenarios scenarios
RUN pip install --no-cache-dir .
"""
HEADER = ("# Generated from trade_ops/stack.toml: python -m trade_ops.compose > compose.yaml\n"
          "# Do not edit; tests/test_compose.py checks this file against the stack.\n")
_CHECK = {"interval": "5s", "timeout": "3s", "retries": 12, "start_period": "10s"}


def _shared_service() -> dict[str, Any]:
    return {"image": SERVICE_IMAGE, "build": {"context": ".", "dockerfile_inline": DOCKERFILE},
            "volumes": ["trade-ops-data:/data"], "restart": "unless-stopped"}


def _shared_env(stack: Stack) -> dict[str, str]:
    env = {"TRADE_OPS_HOST": "0.0.0.0", "TRADE_OPS_VALKEY_URL": "redis://valkey:6379/0",
           "TRADE_OPS_NATS_URL": "nats://nats:4222", "TRADE_OPS_LAKE_URI": "/data/lake",
           "TRADE_OPS_RUN_DIR": "/data"}
    for s in stack.services:
        env[url_env_var(s.name)] = f"http://{s.name}:{s.port}"
    return env


def _health_test(c: Component) -> list[str]:
    url = f"http://127.0.0.1:{c.port}{c.health_path}"
    return ["CMD", "python", "-c",
            f"import sys, urllib.request as u; sys.exit(u.urlopen('{url}', timeout=2).status != 200)"]


def _infra(stack: Stack) -> dict[str, dict[str, Any]]:
    valkey, nats = stack["valkey"], stack["nats"]
    return {
        "valkey": {"image": VALKEY_IMAGE,
                   "command": ["valkey-server", "--port", str(valkey.port), "--appendonly", "yes"],
                   "ports": [f"{valkey.port}:{valkey.port}"], "volumes": ["valkey-data:/data"],
                   "healthcheck": {"test": ["CMD", "valkey-cli", "-p", str(valkey.port), "ping"],
                                   **_CHECK}},
        "nats": {"image": NATS_IMAGE,
                 "command": ["-js", "-sd", "/data", "-p", str(nats.port), "-m", str(nats.monitor_port)],
                 "ports": [f"{nats.port}:{nats.port}", f"{nats.monitor_port}:{nats.monitor_port}"],
                 "volumes": ["nats-data:/data"],
                 "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "-",
                                          f"http://127.0.0.1:{nats.monitor_port}/healthz?js-enabled-only=true"],
                                 **_CHECK}},
    }


def _service(c: Component, stack: Stack) -> tuple[dict[str, Any], dict[str, str]]:
    """A service's own keys (without the shared ones) and its own environment."""
    # Services tolerate each other starting, so only the infrastructure must be healthy first.
    deps = {d: {"condition": "service_healthy" if not stack[d].is_service else "service_started"}
            for d in c.depends_on if stack[d].kind != "lake"}
    own = {"command": ["python", "-m", "services", c.name], "ports": [f"{c.port}:{c.port}"],
           "depends_on": deps, "healthcheck": {"test": _health_test(c), **_CHECK}}
    return own, {"TRADE_OPS_SERVICE": c.name, "TRADE_OPS_PORT": str(c.port), **c.env}


def compose_document(stack: Stack) -> dict[str, Any]:
    """The compose model, fully expanded (what a YAML loader reads from `render`)."""
    services: dict[str, Any] = _infra(stack)
    for c in stack.services:
        own, env = _service(c, stack)
        services[c.name] = {**_shared_service(), **own, "environment": {**_shared_env(stack), **env}}
    return {"name": "trade-ops", "services": services,
            "volumes": {"valkey-data": {}, "nats-data": {}, "trade-ops-data": {}}}


class _Dumper(yaml.SafeDumper):
    """Readable as written: multi-line strings (the inline Dockerfile) as literal blocks,
    lists of plain values on one line ([python, -m, services, oms])."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    flat = all(isinstance(v, str | int | float) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)


def _dump(data: dict[str, Any], indent: int) -> str:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, default_flow_style=False)
    return textwrap.indent(text, " " * indent)


def render(stack: Stack) -> str:
    """compose.yaml text; what every service shares is written once (YAML anchors)."""
    parts = [HEADER, "name: trade-ops\n\n",
             "x-service: &service\n", _dump(_shared_service(), 2),
             "\nx-service-env: &service-env\n", _dump(_shared_env(stack), 2),
             "\nservices:\n", _dump(_infra(stack), 2)]
    for c in stack.services:
        own, env = _service(c, stack)
        parts += [f"  {c.name}:\n    <<: *service\n", _dump(own, 4),
                  "    environment:\n      <<: *service-env\n", _dump(env, 6)]
    parts += ["\nvolumes:\n  valkey-data: {}\n  nats-data: {}\n  trade-ops-data: {}\n"]
    return "".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render(load_stack()))
