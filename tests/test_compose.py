"""The committed compose.yaml is the stack: same services, ports and health probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from trade_ops import compose
from trade_ops.stack import load_stack

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"
REGENERATE = "regenerate it: python -m trade_ops.compose > compose.yaml"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_yaml_is_generated_from_the_stack(committed: dict[str, Any]) -> None:
    assert COMPOSE.read_text() == compose.render(load_stack()), REGENERATE
    expanded = {k: v for k, v in committed.items() if not k.startswith("x-")}
    assert expanded == compose.compose_document(load_stack()), REGENERATE


def test_every_service_is_probed_on_its_own_port_and_health_path(committed: dict[str, Any]) -> None:
    stack, services = load_stack(), committed["services"]
    assert {s.name for s in stack.services} <= set(services)
    for s in stack.services:
        spec = services[s.name]
        assert spec["command"] == ["python", "-m", "services", s.name]
        assert spec["ports"] == [f"{s.port}:{s.port}"]
        assert spec["environment"]["TRADE_OPS_PORT"] == str(s.port)
        probe = " ".join(spec["healthcheck"]["test"])
        assert f"'http://127.0.0.1:{s.port}{s.health_path}'" in probe, s.name
        assert spec["image"] == compose.SERVICE_IMAGE and "python:" in spec["build"]["dockerfile_inline"]


def test_infrastructure_uses_official_images(committed: dict[str, Any]) -> None:
    stack, services = load_stack(), committed["services"]
    assert services["valkey"]["image"].startswith("valkey/valkey:")
    assert services["nats"]["image"].startswith("nats:") and "-js" in services["nats"]["command"]
    nats_probe = " ".join(services["nats"]["healthcheck"]["test"])
    assert f":{stack['nats'].monitor_port}/healthz" in nats_probe
    assert f"{stack['valkey'].port}:{stack['valkey'].port}" in services["valkey"]["ports"]
