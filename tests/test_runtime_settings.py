"""Durability and memory settings: the Docker runtime's and compose.yaml's valkey and nats run
with what the process runtime runs (infra.py is the one definition). Pure logic; the real
engine's servers are asked in tests/test_docker.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trade_ops import compose, compose_secrets, infra
from trade_ops.stack import load_stack

pytestmark = pytest.mark.unit

COMPOSE = Path(__file__).resolve().parents[1] / "compose.yaml"


def _spec(name: str, durable: str) -> compose.ContainerSpec:
    return next(s for s in compose.container_specs(load_stack(), durable=durable) if s.name == name)


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.mark.parametrize(("durable", "fsync"), [("process", "everysec"), ("host", "always")])
def test_valkey_in_a_container_runs_the_process_runtimes_settings(durable: str, fsync: str,
                                                                    tmp_path: Path) -> None:
    container = compose.secured_command(_spec("valkey", durable))
    process = infra.valkey_command(6379, tmp_path, durable=durable)
    for flag in ("--appendonly", "--appendfsync", "--maxmemory", "--maxmemory-policy", "--save",
                 "--protected-mode"):
        assert _flag(container, flag) == _flag(process, flag), flag
    assert _flag(container, "--appendfsync") == fsync
    assert _flag(container, "--maxmemory-policy") == "noeviction"
    assert _flag(container, "--maxmemory") == infra.VALKEY_MAXMEMORY
    # reachable from the other containers, data in the volume, users from the secret file
    assert (_flag(container, "--bind"), _flag(container, "--dir")) == ("0.0.0.0", compose.DATA)
    assert container[1] == f"{compose_secrets.IN_CONTAINER}/{compose_secrets.VALKEY_CONF}"


def _mib(size: str) -> int:
    units = {"m": 1, "mb": 1, "g": 1024, "gb": 1024}
    number = size.rstrip("mgbMGB")
    return int(number) * units[size[len(number):].lower()]


def test_valkeys_container_has_room_beyond_its_maxmemory() -> None:
    """At maxmemory valkey refuses writes (noeviction); the container's limit must not come first."""
    assert _mib(_spec("valkey", "process").memory) > _mib(infra.VALKEY_MAXMEMORY)


def test_nats_syncs_per_the_setting_from_the_process_runtimes_file(tmp_path: Path) -> None:
    conf = f"{compose_secrets.IN_CONTAINER}/{compose_secrets.NATS_SERVER_CONF}"
    loopback = f"127.0.0.1:{compose.NATS_MONITOR_PORT}"  # the container's own: its healthcheck alone
    process = _spec("nats", "process")
    text = process.files[compose_secrets.NATS_SERVER_CONF]
    assert text == infra.nats_server_conf("process", users=compose_secrets.NATS_CONF, monitor=loopback)
    assert "sync_interval" not in text and 'include "nats_conf"' in text
    assert compose.secured_command(process)[1:3] == ["-c", conf]

    host = _spec("nats", "host")
    text = host.files[compose_secrets.NATS_SERVER_CONF]
    assert text == infra.nats_server_conf("host", users=compose_secrets.NATS_CONF, monitor=loopback)
    assert "sync_interval: always" in text and 'include "nats_conf"' in text
    assert compose.secured_command(host)[1:3] == ["-c", conf]
    # the process runtime writes the very same durability text (with its own store and users' file),
    # and no monitoring: a process on the host has no loopback of its own to keep it on
    infra.nats_command(4222, None, tmp_path / "nats", durable="host", config=tmp_path / "users.conf")
    written = (tmp_path / "nats-4222-durability.conf").read_text()
    assert written == infra.nats_server_conf("host", users="users.conf")
    assert "http" not in written


def test_compose_yaml_carries_the_settings() -> None:
    committed = yaml.safe_load(COMPOSE.read_text())["services"]
    valkey = committed["valkey"]["command"]
    assert _flag(valkey, "--appendfsync") == "everysec"
    assert _flag(valkey, "--maxmemory-policy") == "noeviction"
    assert _flag(valkey, "--maxmemory") == infra.VALKEY_MAXMEMORY
    # host durability: nats reads a compose config holding the server file, which includes its users
    doc = compose.compose_document(load_stack(), durable="host")
    nats = doc["services"]["nats"]
    assert nats["configs"] == [{"source": "nats_server_conf",
                                "target": "/run/secrets/nats_server_conf"}]
    assert "sync_interval: always" in doc["configs"]["nats_server_conf"]["content"]
    assert _flag(doc["services"]["valkey"]["command"], "--appendfsync") == "always"
    assert yaml.safe_load(compose.render(load_stack(), durable="host"))["configs"] == doc["configs"]
