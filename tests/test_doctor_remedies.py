"""Every remedy doctor prints for a stack trade-ops started runs as printed, and fixes it.

One real stack (valkey, nats, two kit services whose /health checks both, a tiny one);
each scenario breaks it as an operator would find it (a dead service, dead valkey, dead
nats, a suspended process, two independent dead services), runs every command doctor
prints, asserts each exits 0, and that doctor passes afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from tests.apps.stacks import ROOT, gone
from tests.helpers import cli_json, wait_until
from trade_ops.plan import plan
from trade_ops.rundir import RunDir
from trade_ops.stack import load_stack

pytestmark = pytest.mark.process


def _kit() -> list[str]:
    return ["{python}", "-m", "uvicorn", "tests.doctor_apps:kit_app", "--app-dir", str(ROOT),
            "--host", "{host}", "--port", "{port}"]


SERVICES: dict[str, dict[str, object]] = {
    "kv-a": {"command": _kit()},
    "kv-b": {"command": _kit(), "depends_on": ["kv-a"]},
    "free": {"depends_on": ["nats"]},
}


def doctor(rd: RunDir) -> tuple[int, dict[str, Any]]:
    return cli_json("doctor", "--run-dir", str(rd.path), "--timeout", "1", "--json", "--no-report")


def remedies(doc: dict[str, Any]) -> list[str]:
    """Every command doctor printed for a failure (a blocked check's `fix X first: CMD` too)."""
    found = [c["remedy"] for c in doc["root_causes"]]
    found += [c["remedy"] for c in doc["checks"] if c["status"] == "fail"]
    commands = [r.split(" first: ", 1)[-1] for r in found if r]
    return list(dict.fromkeys(commands))


def run_remedy(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=90, env=env,
                          check=False)


def passes(rd: RunDir) -> bool:
    code, _ = doctor(rd)
    return code == 0


def pid_of(rd: RunDir, name: str) -> int:
    return rd.load_state().processes[name].pid


def kill(rd: RunDir, name: str) -> None:
    pid = pid_of(rd, name)
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: gone(pid), 5)


def fix_and_verify(rd: RunDir, expected_causes: set[str]) -> list[str]:
    code, doc = doctor(rd)
    assert code == 1, [c for c in doc["checks"] if c["status"] == "fail"]
    assert {c["name"] for c in doc["root_causes"]} == expected_causes, doc["root_causes"]
    commands = remedies(doc)
    assert commands
    for command in commands:
        done = run_remedy(command)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    last: dict[str, Any] = {}

    def healthy() -> bool:
        nonlocal last
        code, last = doctor(rd)
        return code == 0

    assert wait_until(healthy, 30, 0.5), [c for c in last["checks"] if c["status"] == "fail"]
    return commands


def test_the_stack_starts_healthy(stack_run: RunDir) -> None:
    assert wait_until(lambda: passes(stack_run), 20, 0.5)


def test_a_dead_service(stack_run: RunDir) -> None:
    kill(stack_run, "kv-b")
    commands = fix_and_verify(stack_run, {"kv-b"})
    assert any(c.startswith("trade-ops up --only kv-b --run-dir ") for c in commands), commands


def test_two_independent_dead_services_are_two_causes(stack_run: RunDir) -> None:
    # kv-b depends on kv-a: both dead is still two causes, or kv-b stays dead after kv-a's fix.
    kill(stack_run, "kv-a")
    kill(stack_run, "kv-b")
    fix_and_verify(stack_run, {"kv-a", "kv-b"})


@pytest.mark.parametrize("infra_name", ["valkey", "nats"])
def test_dead_infrastructure(stack_run: RunDir, infra_name: str) -> None:
    kill(stack_run, infra_name)
    commands = fix_and_verify(stack_run, {infra_name})
    assert f"trade-ops up --only {infra_name} --run-dir {stack_run.path}" in commands, commands


def test_a_suspended_process(stack_run: RunDir) -> None:
    pid = pid_of(stack_run, "free")
    os.kill(pid, signal.SIGSTOP)
    try:
        commands = fix_and_verify(stack_run, {"free"})
    finally:
        os.kill(pid, signal.SIGCONT)
    assert f"kill -CONT {pid}" in commands


def test_up_only_accepts_infrastructure_names() -> None:
    stack = load_stack()
    assert [c.name for c in plan(stack, ["valkey"])] == ["valkey"]
    assert [c.name for c in plan(stack, ["nats"])] == ["nats"]
