"""`trade-ops up / ps / logs / down` end to end, and their answers to bad input."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from tests.apps.stacks import dead_command, free_offset, gone, write_stack
from tests.helpers import CLEAN_ENV
from trade_ops.cli import app
from trade_ops.rundir import RunDir
from trade_ops.stack import load_stack

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("wide_console")]



def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=CLEAN_ENV, catch_exceptions=False)
    return result.exit_code, result.output



def test_up_ps_logs_down(tmp_path: Path, run_dirs: list[Path]) -> None:
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}, "tiny-b": {}})
    offset, rd = free_offset(stack_file), tmp_path / "run"
    run_dirs.append(rd)
    code, out = run("up", "--stack", str(stack_file), "--port-offset", str(offset), "--run-dir", str(rd))
    assert code == 0, out
    assert "all 4 ready" in out and "tiny-b" in out

    code, out = run("ps", "--json", "--run-dir", str(rd))
    assert code == 0, out
    rows = json.loads(out)["processes"]
    assert {r["name"] for r in rows} == {"valkey", "nats", "tiny-a", "tiny-b"}
    assert all(r["state"] == "ready" and r["alive"] and r["pid"] for r in rows)
    assert {r["port"] for r in rows if r["name"] == "tiny-a"} == {110 + offset}

    code, out = run("logs", "tiny-a", "-n", "5", "--run-dir", str(rd))
    assert code == 0 and "GET /livez" in out

    code, out = run("down", "--run-dir", str(rd))
    assert code == 0 and "stopped 4 processes" in out, out
    assert all(gone(r["pid"]) for r in rows)
    assert json.loads(run("ps", "--json", "--run-dir", str(rd))[1])["processes"] == []


def test_two_stacks_side_by_side(tmp_path: Path, run_dirs: list[Path]) -> None:
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
    first = free_offset(stack_file)
    second = free_offset(stack_file, avoid={p + first for p in (100, 101, 102, 110)})
    for offset in (first, second):
        rd = tmp_path / f"run-{offset}"
        run_dirs.append(rd)
        code, out = run("up", "--stack", str(stack_file), "--port-offset", str(offset), "--run-dir", str(rd))
        assert code == 0, out
    for offset in (first, second):
        rows = json.loads(run("ps", "--json", "--run-dir", str(tmp_path / f"run-{offset}"))[1])["processes"]
        assert {(r["name"], r["port"], r["state"]) for r in rows} == {
            ("valkey", 100 + offset, "ready"), ("nats", 101 + offset, "ready"),
            ("tiny-a", 110 + offset, "ready")}
        # the run dir remembers the offset: a plain command finds that stack's ports
        assert RunDir(tmp_path / f"run-{offset}").stack()["tiny-a"].port == 110 + offset


def test_dead_service_exits_3_with_its_log_tail(tmp_path: Path, run_dirs: list[Path]) -> None:
    stack_file = write_stack(tmp_path / "stack.toml", {"broken": {"command": dead_command("boom: bad")}})
    rd = tmp_path / "run"
    run_dirs.append(rd)
    code, out = run("up", "--stack", str(stack_file), "--port-offset", str(free_offset(stack_file)),
                    "--run-dir", str(rd))
    assert code == 3, out
    assert "could not start broken" in out and "boom: bad" in out
    assert "Traceback" not in out
    # What started is left to look at, and the message says how to read and stop it; the
    # printed commands run as printed.
    logs, down = re.findall(r"`(trade-ops [^`]+)`", out)
    assert logs == f"trade-ops logs broken --run-dir {rd}", out
    code, text = run(*shlex.split(logs)[1:])
    assert code == 0 and "boom: bad" in text, text
    assert json.loads(run("ps", "--json", "--run-dir", str(rd))[1])["processes"] != []
    code, text = run(*shlex.split(down)[1:])
    assert code == 0, text
    assert json.loads(run("ps", "--json", "--run-dir", str(rd))[1])["processes"] == []


def test_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    code, out = run("up", "--only", "gateway,nope", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and "unknown service 'nope'" in out and "known services" in out
    code, out = run("up", "--only", ",", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and "at least one service" in out


@pytest.mark.parametrize("content", [None, "this is = = not toml"])
def test_unreadable_stack_file_is_a_usage_error(tmp_path: Path, content: str | None) -> None:
    stack_file = tmp_path / "stack.toml"
    if content is not None:
        stack_file.write_text(content)
    code, out = run("up", "--stack", str(stack_file), "--run-dir", str(tmp_path / "run"))
    assert code == 2, out
    assert str(stack_file) in out and "Traceback" not in out


def test_run_dir_not_writable_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")  # works as root too, where chmod would not
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
    code, out = run("up", "--stack", str(stack_file), "--run-dir", str(blocker / "run"))
    assert code == 3 and "not writable" in out, out
    assert "Traceback" not in out


def test_logs_of_unknown_process_and_down_with_nothing_running(tmp_path: Path) -> None:
    code, out = run("logs", "nope", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and "no log for 'nope'" in out
    code, out = run("down", "--run-dir", str(tmp_path / "run"))
    assert code == 0 and "nothing running" in out


def test_port_offset_clash_with_running_stack_is_refused(tmp_path: Path, run_dirs: list[Path]) -> None:
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
    offset, rd = free_offset(stack_file), tmp_path / "run"
    run_dirs.append(rd)
    assert run("up", "--stack", str(stack_file), "--port-offset", str(offset), "--run-dir", str(rd))[0] == 0
    code, out = run("up", "--stack", str(stack_file), "--port-offset", str(offset + 1), "--run-dir", str(rd))
    assert code == 2 and f"port offset {offset}" in out
    code, out = run("up", "--run-dir", str(rd))  # same stack again: nothing to start
    assert code == 0 and "all 3 ready" in out, out


@pytest.mark.parametrize("command", ["up", "down", "ps", "logs"])
def test_every_command_has_help(command: str) -> None:
    code, out = run(command, "--help")
    assert code == 0 and "Usage" in out
    assert app.registered_commands and all(c.callback.__doc__ for c in app.registered_commands)
    assert load_stack()  # the builtin stack parses with the `enabled` field


def test_only_starts_the_subset_and_its_dependencies(tmp_path: Path, run_dirs: list[Path]) -> None:
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}, "tiny-b": {}})
    rd = tmp_path / "run"
    run_dirs.append(rd)
    code, out = run("up", "--only", "tiny-b", "--stack", str(stack_file),
                    "--port-offset", str(free_offset(stack_file)), "--run-dir", str(rd))
    assert code == 0, out
    rows = json.loads(run("ps", "--json", "--run-dir", str(rd))[1])["processes"]
    assert sorted(r["name"] for r in rows) == ["nats", "tiny-b", "valkey"]


def test_nice_services_and_bench_cpu_per_request(tmp_path: Path, run_dirs: list[Path]) -> None:
    # A tiny app in the place of gateway, so `bench gateway` finds it in the running stack.
    stack_file = write_stack(tmp_path / "stack.toml", {"gateway": {"nice": 7}})
    offset, rd = free_offset(stack_file), tmp_path / "run"
    run_dirs.append(rd)
    code, out = run("up", "--stack", str(stack_file), "--port-offset", str(offset), "--run-dir", str(rd))
    assert code == 0, out
    pid = next(r.pid for r in RunDir(rd).load_state().processes.values() if r.name == "gateway")
    assert psutil.Process(pid).nice() == 7
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():  # Linux with autogroup scheduling: the group's nice is the one that counts
        assert autogroup.read_text().split()[-1] == "7"

    args = ["bench", "gateway", "-n", "300", "-c", "1", "--json", "--run-dir", str(rd)]
    result = CliRunner().invoke(app, args, env=CLEAN_ENV, catch_exceptions=False)
    doc = json.loads(result.stdout)  # the JSON document alone is on stdout
    cpu = doc["cpu"]
    assert cpu["requests"] == 300 + doc["warmup_requests"] and cpu["idle_subtracted"]  # warm-up costs CPU too
    assert {"gateway", "valkey", "nats"} <= set(cpu["ms_per_request"])
    assert cpu["generator_ms_per_request"] > 0  # shown apart, not part of the stack's total
    assert cpu["ms_per_request"]["gateway"] > 0  # it answered 300 requests
    assert cpu["stack_ms_per_request"] == pytest.approx(sum(cpu["ms_per_request"].values()), abs=1e-3)


def test_nice_out_of_range_is_refused(tmp_path: Path) -> None:
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {"nice": -5}})
    code, out = run("up", "--stack", str(stack_file), "--run-dir", str(tmp_path / "run"))
    assert code == 2 and "nice must be 0..19" in out
