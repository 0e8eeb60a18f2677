"""A full disk under the run directory (a size-limited tmpfs, unmounted after): `up`
sizes JetStream's reservations to the disk or says what it needs, and a service whose
publishes fail says so in /health (the gateway said pass while its publish errors climbed)."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.apps.stacks import free_offset
from tests.helpers import wait_until
from trade_ops import infra
from trade_ops.errors import StartupError
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import load_stack

pytestmark = pytest.mark.process


def _tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _tmpfs(tmp_path / "disk", 400)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _tmpfs(tmp_path / "disk", 64)


def _nats_check(rd: RunDir) -> dict[str, Any]:
    """doctor's nats check; the gateway's check's root cause under "gateway_cause"."""
    out = subprocess.run(["trade-ops", "doctor", "--json", "--no-trade", "--run-dir", str(rd.path)],
                         capture_output=True, text=True, timeout=120)
    doc = json.loads(out.stdout)
    check: dict[str, Any] = next(c for c in doc["checks"] if c.get("name") == "nats")
    check["detail"] = " ".join(check["problems"])
    check["gateway_cause"] = next(c["cause"] for c in doc["checks"] if c.get("name") == "gateway")
    return check


def _gateway_stack(tmp_path: Path) -> Path:
    f = tmp_path / "stack.toml"
    f.write_text("[defaults]\nenabled = false\n[services.gateway]\nenabled = true\n")
    return f


def test_up_on_a_disk_too_small_says_what_it_needs_and_starts_nothing(tmp_path: Path,
                                                                      tiny_disk: Path) -> None:
    rd = RunDir(tiny_disk / "run")
    stack = load_stack(_gateway_stack(tmp_path))
    with pytest.raises(StartupError) as err:
        supervisor.up(rd, stack.with_offset(free_offset(_gateway_stack(tmp_path))))
    assert "MiB free" in err.value.message and "needs at least 256 MiB" in err.value.message
    assert str(tiny_disk) in err.value.message  # the disk, named
    assert not rd.has_state() or not rd.load_state().processes
    # The CLI says it in one line, exit 3, and prints no empty table of what started.
    stack_file = _gateway_stack(tmp_path)
    cli = subprocess.run(["trade-ops", "up", "--run-dir", str(rd.path), "--stack", str(stack_file),
                          "--port-offset", str(free_offset(stack_file))],
                         capture_output=True, text=True, timeout=60)
    errors = [line for line in cli.stderr.splitlines() if line.startswith("error:")]
    assert cli.returncode == 3 and len(errors) == 1 and "needs at least 256 MiB" in errors[0], cli.stderr
    assert cli.stdout == "", cli.stdout


def test_streams_fit_a_small_disk_and_failing_publishes_fail_health(tmp_path: Path, small_disk: Path) -> None:
    """With 400 MB free the streams' 14 GiB could not be reserved: `up` failed. Filled up,
    the gateway's /health said pass while gateway_publish_errors_total climbed."""
    rd = RunDir(small_disk / "run")
    stack_file = _gateway_stack(tmp_path)
    stack = load_stack(stack_file, offset=free_offset(stack_file))
    try:
        started = supervisor.up(rd, stack, timeout=60)
        assert all(s.state == "ready" for s in started)
        assert 0 < infra.stream_bytes_scale(rd.path) < 0.02  # sized to 400 MB, kept for the next up
        health = f"{stack['gateway'].base_url}/health"
        assert httpx.get(health).json()["status"] == "pass"
        filler = small_disk / "filler"
        with filler.open("wb") as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * (1 << 20))
        assert wait_until(lambda: httpx.get(health, timeout=2).status_code == 503, timeout=30)
        doc = httpx.get(health, timeout=2).json()
        check = doc["checks"]["nats:publishFailures"][0]
        assert check["status"] == "fail" and "publishes to JetStream failing" in check["output"]
        full = _nats_check(rd)
        assert full["status"] == "fail" and "full" in full["detail"], full
        assert str(small_disk) in full["detail"], full  # the disk, named
        assert full["gateway_cause"] in (None, "nats"), full  # the disk under NATS, not the gateway
        filler.unlink()
        # NATS keeps failing to store once space is back: doctor says to restart it, and the remedy does.
        after = _nats_check(rd)
        assert after["status"] == "fail" and "must be restarted" in after["detail"], after
        assert after["remedy"] == f"trade-ops restart nats --run-dir {rd.path}"
        fixed = subprocess.run(shlex.split(after["remedy"]), capture_output=True, text=True, timeout=120)
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert wait_until(lambda: httpx.get(health, timeout=2).status_code == 200, timeout=30)
    finally:
        supervisor.down(rd, grace=2.0)
        time.sleep(0.2)
