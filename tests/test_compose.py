"""The committed compose.yaml is the stack: same services, ports and health probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from trade_ops import compose, compose_secrets
from trade_ops.stack import load_stack

pytestmark = pytest.mark.unit

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"
REGENERATE = "regenerate it: python -m trade_ops.compose > compose.yaml"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


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
        assert spec["ports"] == [f"127.0.0.1:{s.port}:{s.port}"]
        assert spec["environment"]["TRADE_OPS_PORT"] == str(s.port)
        assert spec["healthcheck"]["test"][-1] == f"http://127.0.0.1:{s.port}{s.health_path}", s.name
        assert spec["image"] == compose.SERVICE_IMAGE and "python:" in spec["build"]["args"]["BASE_IMAGE"]
        assert spec["init"] is True and spec["restart"] == "unless-stopped" and spec["mem_limit"]
        assert spec["labels"] == {compose.LABEL_SERVICE: s.name}


def test_infrastructure_uses_official_images(committed: dict[str, Any]) -> None:
    stack, services = load_stack(), committed["services"]
    assert services["valkey"]["image"] == "${TRADE_OPS_VALKEY_IMAGE:-valkey/valkey:8-alpine}"
    assert services["nats"]["image"] == "${TRADE_OPS_NATS_IMAGE:-nats:2-alpine}"
    assert "--jetstream" in services["nats"]["command"]
    nats_probe = " ".join(services["nats"]["healthcheck"]["test"])
    assert f"127.0.0.1:{compose.NATS_MONITOR_PORT}/healthz" in nats_probe
    # NATS's monitoring (no authentication) stays on the container's loopback: no host port, no
    # other container reaches it; the healthcheck, run in the container, does
    assert services["nats"]["ports"] == [f"127.0.0.1:{stack['nats'].port}:{stack['nats'].port}"]
    assert "--http_port" not in services["nats"]["command"]
    server_conf = committed["configs"][compose_secrets.NATS_SERVER_CONF]["content"]
    assert f'http: "127.0.0.1:{compose.NATS_MONITOR_PORT}"' in server_conf
    assert f"127.0.0.1:{stack['valkey'].port}:{stack['valkey'].port}" in services["valkey"]["ports"]


def test_runtime_and_compose_share_one_definition() -> None:
    """Shifted by a port offset, only the host side of each published port moves."""
    at_0, at_5000 = compose.container_specs(load_stack()), compose.container_specs(load_stack(offset=5000))
    assert [s.name for s in at_0] == [s.name for s in at_5000]
    for a, b in zip(at_0, at_5000, strict=True):
        assert [(h + 5000, c) for h, c in a.ports] == b.ports
        assert (a.command, a.environment, a.healthcheck) == (b.command, b.environment, b.healthcheck)
    doc = compose.compose_document(load_stack())["services"]
    for spec in at_0:
        # compose.yaml adds only the credentials' files (compose.secured_command)
        assert doc[spec.name]["command"] == [p.replace("$", "$$") for p in compose.secured_command(spec)]
        assert doc[spec.name]["healthcheck"]["test"] == [p.replace("$", "$$") for p in spec.healthcheck.test]


def test_the_servers_environment_is_the_stack_files_in_every_runtime(tmp_path: Path) -> None:
    """One definition: `env` under [infra.nats] reaches the process runtime's nats-server,
    the containers (compose, the Docker runtime, Kubernetes: container_specs) and
    compose.yaml; a user file changes it everywhere."""
    from trade_ops.rundir import RunDir
    from trade_ops.runtime import supervisor

    user = tmp_path / "stack.toml"
    user.write_text('[infra.nats]\nenv = { GOMAXPROCS = "2", GOGC = "200" }\n')
    for stack, wanted in ((load_stack(), {"GOMAXPROCS": "1"}),
                          (load_stack(user), {"GOMAXPROCS": "2", "GOGC": "200"})):
        _, env = supervisor._command(stack["nats"], stack, RunDir(tmp_path / "run"))
        assert wanted.items() <= env.items()
        nats = next(s for s in compose.container_specs(stack) if s.name == "nats")
        assert nats.environment == wanted
        assert compose.compose_document(stack)["services"]["nats"]["environment"] == wanted
    _, env = supervisor._command(load_stack()["valkey"], load_stack(), RunDir(tmp_path / "run"))
    assert "GOMAXPROCS" not in env  # the server's own, not every process's
