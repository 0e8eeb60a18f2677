"""Configuration: compose.yaml healthchecks against the ports and paths services really serve.

The original's pnl healthcheck probed 8096 while pnl served 8100; this finds that.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.stack import Stack

__all__ = ["HealthcheckProbe", "compose_healthchecks", "config_results", "judge_healthcheck"]

_URL = re.compile(r"https?://[^/\s:'\"]+(?::(\d+))?(/[^\s'\"]*)?")


class HealthcheckProbe:
    def __init__(self, compose_name: str, service: str | None, test: str | None, port_env: int | None):
        self.compose_name = compose_name
        self.service = service
        self.test = test
        self.port_env = port_env


def _service_name(compose_name: str, stack: Stack) -> str | None:
    name = compose_name.lower().replace("_", "-")
    for candidate in (name, name.removeprefix("trade-ops-"), name.removesuffix("-service")):
        if candidate in stack.components and stack.components[candidate].is_service:
            return candidate
    return None


def _env_port(env: Any) -> int | None:
    if isinstance(env, list):
        env = dict(str(e).split("=", 1) for e in env if "=" in str(e))
    if isinstance(env, dict):
        for key in ("TRADE_OPS_PORT", "PORT"):
            if str(env.get(key, "")).isdigit():
                return int(env[key])
    return None


def compose_healthchecks(path: Path, stack: Stack) -> list[HealthcheckProbe]:
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    out = []
    for compose_name, spec in (doc.get("services") or {}).items():
        spec = spec or {}
        test = (spec.get("healthcheck") or {}).get("test")
        if isinstance(test, list):
            test = " ".join(str(t) for t in test)
        out.append(HealthcheckProbe(compose_name, _service_name(compose_name, stack), test,
                                    _env_port(spec.get("environment"))))
    return out


def judge_healthcheck(probe: HealthcheckProbe, stack: Stack, r: CheckResult, compose: Path) -> None:
    assert probe.service is not None
    base = stack.with_offset(0)[probe.service]
    port = probe.port_env or base.port
    where = f"{compose}: services.{probe.compose_name}.healthcheck.test"
    if not probe.test or probe.test.strip().upper() in ("NONE", "[\"NONE\"]"):
        r.warn(f"{probe.compose_name} has no healthcheck",
               f"{where}: probe http://localhost:{port}{base.health_path}")
        return
    match = _URL.search(probe.test)
    if not match:
        r.summary = "not an HTTP probe"
        r.details.append(f"healthcheck runs {probe.test[:80]!r}")
        return
    probed_port = int(match.group(1) or 80)
    probed_path = (match.group(2) or "/").split("?", 1)[0]
    r.data.update(probed_port=probed_port, probed_path=probed_path, serves_port=port)
    fix = f"{where}: probe http://localhost:{port}{base.health_path}"
    if probed_port != port:
        r.fail(f"healthcheck probes port {probed_port} but {probe.service} serves {port}", fix)
    if probed_path not in (base.health_path, base.live_path):
        r.fail(f"healthcheck probes {probed_path} but {probe.service} serves "
               f"{base.health_path} and {base.live_path}", fix)
    if r.status == "pass":
        r.summary = f":{probed_port}{probed_path}"


def config_results(target: Target) -> list[CheckResult]:
    if target.compose is None:
        return []
    compose = target.compose
    try:
        probes = compose_healthchecks(compose, target.stack)
    except Exception as exc:  # unreadable YAML is one finding, not a crash
        r = CheckResult(f"{compose.name}", "configuration")
        return [r.fail(f"{compose} cannot be read: {exc}", f"fix the YAML in {compose}")]
    out = []
    for probe in probes:
        if probe.service is None:
            continue
        r = CheckResult(f"healthcheck {probe.service}", "configuration", component=probe.service)
        judge_healthcheck(probe, target.stack, r, compose)
        out.append(r)
    return out
