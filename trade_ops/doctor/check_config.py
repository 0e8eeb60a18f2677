"""Configuration that lies: healthchecks probing a port or path the service does not serve.

The original's pnl healthcheck probed 8096 (in its Dockerfile) while pnl served 8100.
Which port a container listens on, in order of trust: the container side of its compose
`ports:` mapping (`8091:8081` means 8081 inside), its `PORT` / `TRADE_OPS_PORT`
environment, the stack's port. Healthchecks come from compose (`healthcheck.test`) and
from the service's Dockerfile (`HEALTHCHECK`, `EXPOSE`). Compose services that match no
service of the stack are listed; a file in which nothing matched says so.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services import env as names
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.stack import Stack

__all__ = ["HealthcheckProbe", "compose_healthchecks", "config_results", "container_ports",
           "dockerfile_facts", "judge_healthcheck"]

_URL = re.compile(r"https?://[^/\s:'\"]+(?::(\d+))?(/[^\s'\"]*)?")
_EXPOSE = re.compile(r"^\s*EXPOSE\s+(.+)$", re.I | re.M)
_HEALTHCHECK = re.compile(r"^\s*HEALTHCHECK\s+(.+?)$", re.I | re.M)


@dataclass
class HealthcheckProbe:
    compose_name: str
    service: str | None
    test: str | None
    port_env: int | None
    ports: list[tuple[int | None, int]] = field(default_factory=list)  # (published, container)
    dockerfile: Path | None = None


def _service_name(compose_name: str, stack: Stack) -> str | None:
    named = [c.name for c in stack.services if c.compose_service == compose_name]
    if named:
        return named[0]
    name = compose_name.lower().replace("_", "-")
    for candidate in (name, name.removeprefix("trade-ops-"), name.removesuffix("-service"),
                      name.removesuffix("-svc")):
        if candidate in stack.components and stack.components[candidate].is_service:
            return candidate
    return None


def _env_port(env: Any) -> int | None:
    if isinstance(env, list):
        env = dict(str(e).split("=", 1) for e in env if "=" in str(e))
    if isinstance(env, dict):
        for key in (names.PORT, "PORT"):
            if str(env.get(key, "")).isdigit():
                return int(env[key])
    return None


def container_ports(ports: Any) -> list[tuple[int | None, int]]:
    """(published, container) of each compose `ports:` entry, short or long syntax."""
    out: list[tuple[int | None, int]] = []
    for entry in ports or []:
        if isinstance(entry, dict):
            target, published = str(entry.get("target")), str(entry.get("published"))
            if target.isdigit():
                out.append((int(published) if published.isdigit() else None, int(target)))
            continue
        parts = str(entry).split("/", 1)[0].split(":")
        if parts[-1].isdigit():
            host_side = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else None
            out.append((int(host_side) if host_side else None, int(parts[-1])))
    return out


def dockerfile_facts(path: Path) -> tuple[str | None, list[int]]:
    """(the HEALTHCHECK command, the EXPOSEd ports) of a Dockerfile."""
    text = path.read_text(errors="replace").replace("\\\n", " ")
    health = _HEALTHCHECK.search(text)
    exposed = [int(p.split("/")[0]) for m in _EXPOSE.finditer(text) for p in m.group(1).split()
               if p.split("/")[0].isdigit()]
    return (health.group(1).strip() if health else None), exposed


def _dockerfile(spec: dict[str, Any], base: Path) -> Path | None:
    build = spec.get("build")
    if isinstance(build, str):
        context, name = build, "Dockerfile"
    elif isinstance(build, dict) and "dockerfile_inline" not in build:
        context, name = str(build.get("context", ".")), str(build.get("dockerfile", "Dockerfile"))
    else:
        return None
    path = (base / context / name).resolve()
    return path if path.is_file() else None


def compose_healthchecks(path: Path, stack: Stack) -> list[HealthcheckProbe]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there: ~10x faster
    doc = yaml.load(path.read_text(), Loader=loader) or {}
    out = []
    for compose_name, spec in (doc.get("services") or {}).items():
        spec = spec or {}
        test = (spec.get("healthcheck") or {}).get("test")
        if isinstance(test, list):
            test = " ".join(str(t) for t in test)
        out.append(HealthcheckProbe(compose_name, _service_name(compose_name, stack), test,
                                    _env_port(spec.get("environment")), container_ports(spec.get("ports")),
                                    _dockerfile(spec, path.parent)))
    return out


def _listens_on(probe: HealthcheckProbe, stack: Stack) -> tuple[int, str]:
    """The port the service listens on inside its container, and why doctor thinks so."""
    assert probe.service is not None
    served = probe.port_env or stack.with_offset(0)[probe.service].port or 80
    inside = [c for _, c in probe.ports]
    if served in inside or not inside:
        why = "its PORT environment" if probe.port_env else "the stack"
        return served, why
    published, container = probe.ports[0]
    return container, f"ports: {published}:{container}" if published else f"ports: {container}"


def _judge_test(test: str, where: str, port: int, why: str, probe: HealthcheckProbe, stack: Stack,
                r: CheckResult) -> None:
    assert probe.service is not None
    base = stack.with_offset(0)[probe.service]
    match = _URL.search(test)
    if not match:
        r.details.append(f"{where} runs {test[:80]!r} (not an HTTP probe)")
        return
    probed_port = int(match.group(1) or 80)
    probed_path = (match.group(2) or "/").split("?", 1)[0]
    r.data.update(probed_port=probed_port, probed_path=probed_path, serves_port=port)
    fix = f"{where}: probe http://localhost:{port}{base.health_path}"
    if probed_port != port:
        r.fail(f"{where} probes port {probed_port} but {probe.service} listens on {port} inside its "
               f"container ({why})", f"{fix} (manual step)")
    if probed_path not in (base.health_path, base.live_path):
        r.fail(f"{where} probes {probed_path} but {probe.service} serves "
               f"{base.health_path} and {base.live_path}", f"{fix} (manual step)")
    if r.status == "pass":
        r.summary = f":{probed_port}{probed_path}"


def judge_healthcheck(probe: HealthcheckProbe, stack: Stack, r: CheckResult, compose: Path) -> None:
    assert probe.service is not None
    port, why = _listens_on(probe, stack)
    base = stack.with_offset(0)[probe.service]
    where = f"{compose}: services.{probe.compose_name}.healthcheck.test"
    docker_test, exposed = dockerfile_facts(probe.dockerfile) if probe.dockerfile else (None, [])
    if exposed and port not in exposed:
        r.warn(f"{probe.dockerfile}: EXPOSE {' '.join(map(str, exposed))} but {probe.service} listens on "
               f"{port} ({why})", f"{probe.dockerfile}: EXPOSE {port} (manual step)")
    if docker_test and docker_test.upper() != "NONE":
        _judge_test(docker_test, f"{probe.dockerfile}: HEALTHCHECK", port, why, probe, stack, r)
    if probe.test and probe.test.strip().upper() not in ("NONE", '["NONE"]'):
        _judge_test(probe.test, where, port, why, probe, stack, r)
    elif not docker_test:
        r.warn(f"{probe.compose_name} has no healthcheck",
               f"{where}: probe http://localhost:{port}{base.health_path} (manual step)")


def config_results(target: Target) -> list[CheckResult]:
    if target.compose is None:
        return []
    compose = target.compose
    try:
        probes = compose_healthchecks(compose, target.stack)
    except Exception as exc:  # unreadable YAML is one finding, not a crash
        r = CheckResult(f"{compose.name}", "configuration")
        return [r.fail(f"{compose} cannot be read: {exc}", f"fix the YAML in {compose} (manual step)")]
    out = []
    for probe in probes:
        if probe.service is None:
            continue
        r = CheckResult(f"healthcheck {probe.service}", "configuration", component=probe.service)
        try:
            judge_healthcheck(probe, target.stack, r, compose)
        except OSError as exc:
            r.warn(f"{probe.dockerfile} cannot be read: {exc}")
        out.append(r)
    from trade_ops.topology import COMPOSE_JOB  # its imports (NATS, the provisioning) only here

    infra = {c.name for c in target.stack.infra} | {COMPOSE_JOB}  # the operator's one-shot: no service
    unmatched = [p.compose_name for p in probes if p.service is None and p.compose_name not in infra]
    if not out:
        r = CheckResult(f"{compose.name}", "configuration")
        names = ", ".join(shlex.quote(p.compose_name) for p in probes) or "none"
        out.append(r.warn(f"nothing in {compose} matched a service of the stack (compose services: "
                          f"{names})", "name the compose services as the stack does, or give each a "
                          "`compose_service` in the stack file (manual step)"))
    elif unmatched:
        r = CheckResult(f"{compose.name} unmatched", "configuration")
        r.summary = f"{len(unmatched)} not checked"
        r.details.append(f"not matched to a stack service, so not checked: {', '.join(unmatched)}")
        out.append(r)
    return out
