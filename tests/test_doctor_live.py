"""Doctor against real processes started by the real supervisor: valkey, nats, small services.

One stack for the module (starting it is the slow part); the tests that break it run last.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.apps.stacks import ROOT, gone, tiny_command, write_stack
from tests.helpers import wait_until
from trade_ops.cli import app
from trade_ops.doctor.check_services import UNHEALTHY_200
from trade_ops.rundir import RunDir

pytestmark = pytest.mark.process


def _app(name: str) -> list[str]:
    return ["{python}", "-m", "uvicorn", f"tests.doctor_apps:{name}", "--app-dir", str(ROOT),
            "--host", "{host}", "--port", "{port}"]


SERVICES: dict[str, dict[str, object]] = {
    "kv-a": {"command": _app("kit_app")},  # /health checks valkey and nats
    "kv-b": {"command": _app("kit_app"), "depends_on": ["kv-a"]},
    "free": {"depends_on": ["nats"]},  # tiny: needs no valkey
    "sick": {"command": _app("unhealthy_app"), "depends_on": ["nats"]},
    "stuck": {"command": _app("hanging_app"), "depends_on": ["nats"]},
    "doomed": {"depends_on": ["nats"], "command": tiny_command()},
    "halfdead": {"command": _app("task_dead_app"), "depends_on": ["nats"]},
}


def doctor(rd: RunDir, *args: str) -> tuple[int, dict[str, Any], str]:
    no_report = [] if "--report" in args else ["--no-report"]  # keep the repo's reports/ clean
    result = CliRunner().invoke(app, ["doctor", "--run-dir", str(rd.path), "--timeout", "0.5", "--json",
                                      *no_report, *args], catch_exceptions=False)
    doc = json.loads(result.stdout)
    return result.exit_code, doc, result.stderr


def kill_then_doctor(rd: RunDir, name: str) -> tuple[int, dict[str, Any]]:
    pid = rd.load_state().processes[name].pid
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: gone(pid), 5)
    code, doc, _ = doctor(rd)
    return code, doc


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def test_unhealthy_body_and_a_hanging_service_fail_the_rest_pass(stack_run: RunDir, tmp_path: Path) -> None:
    report = tmp_path / "STATUS_REPORT.md"
    code, doc, _ = doctor(stack_run, "--report", str(report))
    checks = by_name(doc)
    assert code == 1 and doc["status"] == "fail"
    assert checks["sick"]["status"] == "fail"
    assert checks["sick"]["problems"][0] == f"{UNHEALTHY_200} · error: database connection lost"
    assert checks["sick"]["cause"] == "sick" and checks["sick"]["remedy"]
    assert checks["stuck"]["status"] == "fail" and "no answer within" in checks["stuck"]["problems"][0]
    for name in ("valkey", "nats", "kv-a", "kv-b", "free", "doomed", "process kv-a", "process doomed"):
        assert checks[name]["status"] in ("pass", "warn"), checks[name]
    assert doc["summary"]["services"] == {"pass": 5, "warn": 0, "fail": 2, "total": 7}
    # A dead background task: /health passes, the process check does not.
    assert checks["halfdead"]["status"] == "pass"
    halfdead = checks["process halfdead"]
    assert halfdead["status"] == "fail" and "background task fills-consumer died" in halfdead["problems"][0]
    assert halfdead["remedy"].startswith(f"kill {halfdead['data']['pid']} && ")
    assert {c["name"] for c in doc["root_causes"]} == {"sick", "stuck", "halfdead"}
    assert all(c["remedy"] for c in doc["checks"] if c["status"] == "fail")
    assert json.loads((stack_run.path / "doctor-last.json").read_text())["checks"] == doc["checks"]
    assert "## Services" in report.read_text() and UNHEALTHY_200 in report.read_text()


def test_a_killed_service_is_named_dead_with_its_log_tail(stack_run: RunDir) -> None:
    code, doc = kill_then_doctor(stack_run, "doomed")
    checks = by_name(doc)
    dead = checks["process doomed"]
    assert code == 1 and dead["status"] == "fail" and "dead" in dead["summary"]
    assert any("Uvicorn running" in line or "Started" in line for line in dead["log_tail"])
    assert dead["remedy"].startswith("trade-ops up --only doomed")
    assert checks["doomed"]["status"] == "fail" and checks["doomed"]["cause"] == "doomed"


def test_valkey_stopped_is_the_one_root_cause_of_its_dependents(stack_run: RunDir) -> None:
    code, doc = kill_then_doctor(stack_run, "valkey")
    checks = by_name(doc)
    assert code == 1
    assert checks["valkey"]["status"] == "fail" and checks["valkey"]["cause"] == "valkey"
    assert "trade-ops up --only valkey" in checks["valkey"]["remedy"]
    for name in ("kv-a", "kv-b"):
        assert checks[name]["status"] == "fail" and checks[name]["cause"] == "valkey"
        assert checks[name]["blocked_by"] == ["valkey"]
    valkey = next(c for c in doc["root_causes"] if c["name"] == "valkey")
    assert {"kv-a", "kv-b"} <= set(valkey["blocks"])
    causes = {c["name"] for c in doc["root_causes"]}
    assert not causes & {"kv-a", "kv-b", "free"}  # blocked services are not causes themselves
    assert checks["free"]["status"] == "pass"

    # The Rich view says the same in words: one root cause, the services it blocks, the fix.
    human = CliRunner().invoke(app, ["doctor", "--run-dir", str(stack_run.path), "--timeout", "0.5",
                                     "--no-report"], catch_exceptions=False)
    assert human.exit_code == 1
    assert "blocked by valkey" in human.output and "Root causes" in human.output
    assert "FAIL" in human.output


def test_nothing_running_is_a_clear_message_and_exit_3(tmp_path: Path) -> None:
    # No state: the stack file's own ports (offset 0 puts them at 100-115, where nothing listens).
    path = write_stack(tmp_path / "stack.toml", {"tiny-a": {}, "tiny-b": {}})
    result = CliRunner().invoke(app, ["doctor", "--no-report", "--run-dir", str(tmp_path / "run"),
                                      "--stack", str(path), "--timeout", "0.5"], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    # No running stack and no --url: doctor says so and probes nothing at the file's ports.
    assert "no stack is running from" in result.output and "--url" in result.output
    assert "trade-ops up" in result.output
