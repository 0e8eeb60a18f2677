"""Ctrl-C during `up`, logs like compose, `restart`, the run dir found like git's, ps and
--json in every outcome (issue 16, items 3-6), against real processes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import helpers
from tests.apps.stacks import free_offset, gone, write_stack
from tests.helpers import cli_env, cli_process, wait_until
from trade_ops import logfiles, runtime
from trade_ops.cli import app
from trade_ops.commands.proctable import human_duration
from trade_ops.doctor.model import decode_report
from trade_ops.rundir import RunDir, find_run_dir
from trade_ops.runtime import supervisor

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("wide_console")]

CLEAN_ENV = {**helpers.CLEAN_ENV, "TRADE_OPS_RUNTIME": None}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=CLEAN_ENV, catch_exceptions=False)
    return result.exit_code, result.output


def run_split(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=CLEAN_ENV, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr



def _cli_env() -> dict[str, str]:
    return {k: v for k, v in cli_env().items() if k not in CLEAN_ENV}


def test_ctrl_c_during_up_stops_what_it_started_and_says_so(tmp_path: Path, run_dirs: list[Path]) -> None:
    # "sick" runs but never gets ready: `up` is still waiting when Ctrl-C comes.
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}, "sick": {"env": {"TINY_HEALTH": "503"}}})
    rd = tmp_path / "run"
    run_dirs.append(rd)
    with cli_process(["up", "--stack", str(stack_file), "--port-offset", str(free_offset(stack_file)),
                      "--run-dir", str(rd), "--timeout", "60"], env=_cli_env(), cwd=tmp_path) as proc:
        state = RunDir(rd)
        assert wait_until(lambda: state.has_state() and len(runtime.running(state)) == 4, timeout=30)
        pids = [r.pid for r in state.load_state().processes.values()]
        interrupted_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - interrupted_at
    text = out + err
    assert proc.returncode == 130, text
    assert "interrupted: stopped the 4 processes this `up` had started" in text, text
    assert "Traceback" not in text
    assert all(gone(pid) for pid in pids), [pid for pid in pids if not gone(pid)]
    assert not RunDir(rd).has_state()
    # Without a terminal, the start-up progress is a line per process on stderr.
    assert "valkey ready in" in err and "nats ready in" in err
    print(f"Ctrl-C to exit: {took:.2f} s")  # a figure for the report, never asserted


def test_logs_restart_and_the_run_dir_found_from_a_subdirectory(tmp_path: Path, run_dirs: list[Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A real service (gateway: uvicorn under services/__main__) beside a tiny one.
    real: dict[str, object] = {"command": ["{python}", "-m", "services", "{name}"],
                               "app": "services.gateway.app:app", "depends_on": ["nats"]}
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}, "gateway": real})
    project = tmp_path / "project"
    rd = project / ".trade-ops"
    run_dirs.append(rd)
    code, out = run("up", "--stack", str(stack_file), "--port-offset", str(free_offset(stack_file)),
                    "--run-dir", str(rd))
    assert code == 0, out

    # Found like git: from a subdirectory, with no --run-dir and no TRADE_OPS_RUN_DIR.
    deeper = project / "src" / "deeper"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    assert find_run_dir() == rd
    code, out = run("ps", "--json")
    rows = {r["name"]: r for r in json.loads(out)["processes"]}
    assert code == 0 and set(rows) == {"valkey", "nats", "tiny-a", "gateway"}
    assert all(r["ready_s"] is not None and r["ready_s"] > 0 for r in rows.values())  # was always "-"
    code, out = run("ps")
    assert code == 0 and "ready in" in out and "uptime" in out and "uptime s" not in out

    # Every line of every log has a time (uvicorn's too), so all interleave in order.
    gateway_log = supervisor.logs_of(RunDir(rd), ["gateway"])["gateway"]
    assert wait_until(lambda: "Uvicorn running" in gateway_log.read_text() or
                      "Application startup complete" in gateway_log.read_text(), timeout=10)
    for name in ("gateway", "valkey", "nats"):
        lines = [ln for ln in supervisor.logs_of(RunDir(rd), [name])[name].read_text().splitlines() if ln]
        assert lines and all(logfiles.line_time(ln) is not None for ln in lines
                             if not ln.startswith((" ", "\t", "Traceback"))), name
    code, out = run("logs", "-n", "0", "--since", "10m")
    assert code == 0, out
    prefixed = [ln for ln in out.splitlines() if " | " in ln]
    assert {ln.split(" | ", 1)[0].strip() for ln in prefixed} == {"valkey", "nats", "tiny-a", "gateway"}
    times = [t for ln in prefixed if (t := logfiles.line_time(ln.split(" | ", 1)[1])) is not None]
    assert times == sorted(times) and len(times) > 5
    code, out = run("logs", "gateway", "-n", "3")
    assert code == 0 and len(out.strip().splitlines()) == 3 and " | " not in out

    # restart: a new process, a new log file opened by a marker with its pid; the old log kept.
    old_pid = rows["tiny-a"]["pid"]
    code, out, _ = run_split("restart", "tiny-a", "--json")
    assert code == 0, out
    restarted = json.loads(out)["processes"]
    assert [(r["name"], r["restarts"], r["state"]) for r in restarted] == [("tiny-a", 1, "ready")]
    new_pid = restarted[0]["pid"]
    assert new_pid != old_pid and gone(old_pid)
    tail = supervisor.log_tail(RunDir(rd), "tiny-a", 200)  # what doctor shows: the current process's
    assert f"pid {new_pid}" in tail and f"pid {old_pid}" not in tail
    assert len(list((rd / "logs").glob("tiny-a.*.log"))) == 2
    others = {r["name"]: r["pid"] for r in json.loads(run("ps", "--json")[1])["processes"]}
    assert others["gateway"] == rows["gateway"]["pid"]  # the others were left alone

    code, out = run("down")
    assert code == 0 and "stopped 4 processes" in out
    code, stdout, _ = run_split("restart", "--json")
    assert code == 3 and json.loads(stdout)["status"] == "error"


def test_a_foreign_directory_finds_no_stack_and_probes_nothing(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = tmp_path / "elsewhere"
    foreign.mkdir()
    assert find_run_dir(foreign) is None, "a .trade-ops/ above the test's tmp dir"
    monkeypatch.chdir(foreign)
    code, out = run("ps")
    assert code == 0 and f"no .trade-ops/ in {foreign} or above" in out
    code, out = run("doctor", "--no-report")
    assert code == 3 and "no running stack found" in out and "trade-ops up" in out
    code, stdout, _ = run_split("doctor", "--json", "--no-report")
    assert code == 3 and json.loads(stdout)["status"] == "error" and json.loads(stdout)["exit_code"] == 3
    code, stdout, _ = run_split("bench", "oms", "-n", "10", "--json")
    assert code == 3 and json.loads(stdout) == {**json.loads(stdout), "status": "error", "exit_code": 3}
    assert not (foreign / ".trade-ops").exists()  # doctor and bench made no run dir, no lake


def test_json_errors_are_one_document_on_stdout(tmp_path: Path) -> None:
    broken, empty = tmp_path / "broken", tmp_path / "empty"
    broken.mkdir()
    (broken / "state.json").write_text("{not json")
    for args, where, code in ((["restart"], broken, 3),
                              (["up", "--only", "nope"], empty, 2), (["logs", "nope"], empty, 2),
                              (["logs", "--since", "soon"], empty, 2), (["restart"], empty, 3)):
        exit_code, stdout, stderr = run_split(*args, "--json", "--run-dir", str(where))
        doc = json.loads(stdout)  # one document, nothing else on stdout
        assert exit_code == code and doc["status"] == "error" and doc["exit_code"] == code, (args, stdout)
        assert doc["message"] and doc["message"] in stderr
    # A corrupt state is read for what it says (nothing here): ps and down still work.
    exit_code, stdout, _ = run_split("ps", "--json", "--run-dir", str(broken))
    assert exit_code == 0 and json.loads(stdout)["processes"] == [], stdout
    exit_code, stdout, _ = run_split("down", "--json", "--run-dir", str(broken))
    assert exit_code == 0 and json.loads(stdout)["status"] == "ok", stdout


def test_run_dir_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer, inner = tmp_path / "a" / ".trade-ops", tmp_path / "a" / "b" / ".trade-ops"
    inner.mkdir(parents=True)
    outer.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    monkeypatch.delenv("TRADE_OPS_RUN_DIR", raising=False)
    assert RunDir().path == inner  # the nearest wins
    monkeypatch.chdir(tmp_path / "a")
    assert RunDir().path == outer
    monkeypatch.setenv("TRADE_OPS_RUN_DIR", str(tmp_path / "env"))
    assert RunDir().path == tmp_path / "env"  # the environment over the search
    assert RunDir(tmp_path / "flag").path == tmp_path / "flag"  # the flag over both


def test_human_durations_and_since() -> None:
    assert [human_duration(s) for s in (None, 0.84, 42, 187, 7500, 277_200)] == [
        "-", "0.84s", "42s", "3m 07s", "2h 05m", "3d 05h"]
    now = 1_800_000_000.0
    assert logfiles.parse_since("5m", now) == now - 300
    assert logfiles.parse_since("1.5h", now) == now - 5400


def test_log_lines_take_the_time_of_the_line_before(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("2026-11-29 23:25:19,100 ERROR oms: boom\nTraceback (most recent call last):\n"
                   "[12] 2026/11/29 23:25:20.500000 [INF] nats line\n"
                   "7:M 29 Nov 2026 23:25:21.250 * valkey line\n")
    times = [ln.time for ln in logfiles.read_lines("x", log)]
    assert times[0] == times[1] < times[2] < times[3]
    assert round(times[2] - times[0], 3) == 1.4 and round(times[3] - times[2], 3) == 0.75


def test_follow_yields_lines_as_they_are_written(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("old line\n")
    b.write_text("")
    lines = logfiles.follow({"a": a, "b": b}, interval=0.02)
    with a.open("a") as f:
        f.write("2026-11-29 23:25:19,100 INFO a: new\n")
    first = next(lines)
    with b.open("a") as f:
        f.write("partial")
    with b.open("a") as f:
        f.write(" then whole\n")
    second = next(lines)
    lines.close()
    assert (first.name, first.text) == ("a", "2026-11-29 23:25:19,100 INFO a: new")
    assert (second.name, second.text) == ("b", "partial then whole")


def test_doctor_up_starts_as_up_does_and_reports_the_start_up(tmp_path: Path, run_dirs: list[Path]) -> None:
    # The README's first command on a shared host: TRADE_OPS_PORT_OFFSET moves the stack
    # `doctor --up` starts, as it moves `up`'s (doctor ignored it: default ports), and the
    # operator token is printed the first time it is created (doctor never printed it).
    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
    offset = free_offset(stack_file)
    rd = tmp_path / "run"
    run_dirs.append(rd)
    args = ["doctor", "--up", "--json", "--no-report", "--no-trade", "--stack", str(stack_file),
            "--run-dir", str(rd), "--timeout", "2"]
    env = {**CLEAN_ENV, "TRADE_OPS_PORT_OFFSET": str(offset), "TRADE_OPS_RUNTIME": "process"}
    result = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    doc = json.loads(result.stdout)
    assert doc["startup_ms"] > 0 and doc["duration_ms"] > 0  # the start is not hidden in "PASS in 1 s"
    # the document is the typed report's, every key and type of it; doctor-last.json is the same report
    assert decode_report(result.stdout.encode()).to_json() == doc
    assert decode_report((rd / "doctor-last.json").read_bytes()) == decode_report(result.stdout.encode())
    assert "valkey ready in" in result.stderr and "tiny-a ready in" in result.stderr
    state = RunDir(rd).load_state()
    assert state.offset == offset and state.processes["tiny-a"].port == 110 + offset
    token = json.loads((rd / "secrets" / "credentials.json").read_text())["operator_token"]
    assert f"operator token (admin endpoints; shown only now, kept in {rd / 'secrets'}" in result.stderr
    assert token in result.stderr and token not in result.stdout  # never in the JSON document
    # A second start keeps the credentials and says nothing of the token.
    again = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert json.loads(again.stdout)["startup_ms"] > 0 and token not in again.stderr + again.stdout


def test_doctor_up_takes_the_runtime_as_up_does(tmp_path: Path) -> None:
    # --runtime (and TRADE_OPS_RUNTIME) reach the start: docker, on a host without an engine,
    # is the engine's clear failure (doctor --up always started processes); a bad name is exit 2.
    no_engine = {**CLEAN_ENV, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    by_env = {**no_engine, "TRADE_OPS_RUNTIME": "docker"}
    for args, env in ((["--runtime", "docker"], no_engine), ([], by_env)):
        result = CliRunner().invoke(app, ["doctor", "--up", "--no-report", "--run-dir",
                                          str(tmp_path / "run"), *args], env=env, catch_exceptions=False)
        assert result.exit_code == 3, result.output
        assert "no Docker engine reachable at unix://" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["doctor", "--up", "--runtime", "podman", "--run-dir",
                                      str(tmp_path / "r")], env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 2 and "unknown runtime 'podman'" in result.output, result.output
