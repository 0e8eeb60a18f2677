"""The Docker runtime refuses before it starts anything, as the process supervisor does
(issue 26): while another command holds the run directory (two `up`s at once raced on its
state), `up --runtime docker`, `down` and `restart` of a Docker stack say so in one line,
exit 3; on a disk too small for JetStream's streams (a size-limited tmpfs, unmounted
after) `up --runtime docker` names the disk and what it needs. No container is made.
Outside CI these skip when no engine answers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.apps.stacks import free_offset, write_stack
from tests.helpers import CLI
from trade_ops.rundir import RunDir, StackState
from trade_ops.runtime.docker import containers_of

pytestmark = pytest.mark.docker


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADE_OPS_")}
    return subprocess.run([*CLI, *args],
                          capture_output=True, text=True, timeout=60, env=env)


def _refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused command (exit 3)."""
    assert done.returncode == 3, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def _held(done: subprocess.CompletedProcess[str]) -> None:
    line = _refused(done)
    assert "another trade-ops command" in line and f"pid {os.getpid()}" in line, line


def test_docker_up_down_and_restart_refuse_while_the_run_directory_is_held(
        tmp_path: Path, docker_engine: Any) -> None:
    run_dir = RunDir(tmp_path / "run")
    run_dir.ensure_writable()
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
    offset = free_offset(stack_file)
    with run_dir.lock():  # as a first `up` holds it while it builds and starts
        _held(_cli("up", "--runtime", "docker", "--stack", str(stack_file),
                      "--run-dir", str(run_dir.path), "--port-offset", str(offset)))
        assert not run_dir.has_state() and not containers_of(docker_engine, run_dir)
        # A Docker stack recorded here: down and restart reach the Docker runtime, and wait too.
        run_dir.save_state(StackState(offset=offset, runtime="docker"))
        _held(_cli("down", "--run-dir", str(run_dir.path)))
        _held(_cli("restart", "--run-dir", str(run_dir.path)))
        assert run_dir.has_state()  # down forgot nothing it did not stop
    assert not containers_of(docker_engine, run_dir)


def test_docker_up_on_a_disk_too_small_names_it_and_starts_nothing(tmp_path: Path,
                                                                   docker_engine: Any) -> None:
    """The streams' reservations are sized to the disk before any container starts (valkey
    and nats were started, then the streams could not be made)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    run_dir = RunDir(disk / "run")
    try:
        stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
        line = _refused(_cli("up", "--runtime", "docker", "--stack", str(stack_file), "--run-dir",
                             str(run_dir.path), "--port-offset", str(free_offset(stack_file))))
        assert f"({disk})" in line and "needs at least 256 MiB" in line, line
        assert not containers_of(docker_engine, run_dir)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)
