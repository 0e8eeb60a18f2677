"""The durability setting reaches the servers (valkey appendfsync, JetStream sync), and
valkey never evicts state (maxmemory with noeviction): real servers, asked what they run with."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
import redis

from tests.helpers import wait_until
from trade_ops import infra
from trade_ops.errors import StartupError, UsageError
from trade_ops.rundir import RunDir

pytestmark = pytest.mark.process


@pytest.mark.parametrize(("durable", "fsync"), [("process", "everysec"), ("host", "always")])
def test_valkey_runs_with_the_chosen_fsync_and_never_evicts(tmp_path: Path, durable: str, fsync: str) -> None:
    port = infra.free_port()
    proc = subprocess.Popen(infra.valkey_command(port, tmp_path, durable=durable), stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: infra.valkey_ready("127.0.0.1", port)), "valkey did not start"
        r = redis.Redis(port=port)
        assert r.config_get("appendfsync") == {"appendfsync": fsync}
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert int(r.config_get("maxmemory")["maxmemory"] or 0) > 0
        r.close()
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize(("durable", "always"), [("process", False), ("host", True)])
def test_jetstream_syncs_per_the_setting(tmp_path: Path, durable: str, always: bool) -> None:
    port, monitor = infra.free_port(), infra.free_port()
    cmd = infra.nats_command(port, monitor, tmp_path / "nats", durable=durable)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: infra.nats_ready(f"http://127.0.0.1:{monitor}")), "nats did not start"
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/varz", timeout=2) as resp:
            config = json.load(resp)["jetstream"]["config"]
        assert bool(config.get("sync_always")) is always
        assert config["store_dir"].startswith(str(tmp_path / "nats"))
    finally:
        proc.terminate()
        proc.wait(5)


def test_the_setting_comes_from_the_environment_or_the_run_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(infra.DURABILITY_ENV, raising=False)
    rd = RunDir(tmp_path)
    assert rd.durability() == infra.DEFAULT_DURABILITY
    rd.keep_durability("host")  # what `up --durability host` does
    assert rd.durability() == "host" and (tmp_path / "durability").read_text() == "host"
    monkeypatch.setenv(infra.DURABILITY_ENV, "process")
    assert rd.durability() == "process"
    monkeypatch.setenv(infra.DURABILITY_ENV, "sometimes")
    with pytest.raises(StartupError):
        rd.durability()
    with pytest.raises(UsageError):
        rd.keep_durability("sometimes")
