"""The supervisor library against real valkey-server, nats-server and uvicorn processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.apps.stacks import dead_command, free_offset, gone, write_stack
from tests.helpers import CLI, Proc, wait_until
from trade_ops import infra, processes
from trade_ops.errors import PortInUseError, StartupError, UsageError
from trade_ops.plan import plan
from trade_ops.rundir import ProcessRecord, RunDir, StackState
from trade_ops.runtime import supervisor
from trade_ops.stack import Stack, load_stack

pytestmark = pytest.mark.process


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[RunDir]:
    """A run directory whose processes are stopped, and checked gone, after the test."""
    rd = RunDir(tmp_path / "run")
    yield rd
    recs = rd.load_state().processes.values() if rd.has_state() else []
    supervisor.down(rd, grace=2.0)
    assert all(gone(r.pid) for r in recs)


def _stack(tmp_path: Path, services: dict[str, dict[str, object]]) -> Stack:
    path = write_stack(tmp_path / "stack.toml", services)
    return load_stack(path, offset=free_offset(path))


def test_up_status_down_leaves_no_process(tmp_path: Path, run_dir: RunDir) -> None:
    stack = _stack(tmp_path, {"tiny-a": {}, "tiny-b": {"depends_on": ["tiny-a"]}})
    seen: list[str] = []
    started = supervisor.up(run_dir, stack, timeout=30, on_progress=lambda st: seen.append(st.state))
    assert [s.name for s in started] == ["valkey", "nats", "tiny-a", "tiny-b"]
    assert all(s.state == "ready" and s.alive and s.pid for s in started)
    assert {s.port for s in started} >= {stack["tiny-a"].port, stack["valkey"].port}
    assert "running" in seen and "ready" in seen
    assert run_dir.load_state().offset == stack.offset

    listed = supervisor.status(run_dir)
    assert {(s.name, s.pid, s.state) for s in listed} == {(s.name, s.pid, "ready") for s in started}
    assert all(s.uptime_s is not None and s.uptime_s >= 0 for s in listed)
    assert "/livez" in supervisor.log_tail(run_dir, "tiny-a")  # uvicorn logs the probes

    stopped = supervisor.down(run_dir)
    assert {s.state for s in stopped} == {"stopped"}
    assert all(gone(s.pid) for s in started)
    assert not run_dir.has_state()
    assert supervisor.status(run_dir) == []


def test_up_again_restarts_only_the_dead(tmp_path: Path, run_dir: RunDir) -> None:
    stack = _stack(tmp_path, {"tiny-a": {}, "tiny-b": {}})
    first = {s.name: s for s in supervisor.up(run_dir, stack)}
    os.kill(first["tiny-b"].pid or 0, signal.SIGKILL)
    assert wait_until(lambda: {s.name: s.state for s in supervisor.status(run_dir)}["tiny-b"] == "dead")
    # up refuses a port that is still taken (a full CI run once saw the killed process's port
    # held, with no process to name, a moment after it died): the restart is what is tested here
    port = stack["tiny-b"].port or 0
    assert wait_until(lambda: not infra.port_in_use(port), timeout=30), f"port {port} still taken"

    second = {s.name: s for s in supervisor.up(run_dir, stack)}
    assert second["tiny-a"].pid == first["tiny-a"].pid and second["tiny-a"].restarts == 0
    assert second["tiny-b"].pid != first["tiny-b"].pid and second["tiny-b"].restarts == 1
    assert all(s.state == "ready" for s in second.values())


def test_port_taken_is_reported_before_anything_starts(tmp_path: Path, run_dir: RunDir) -> None:
    stack = _stack(tmp_path, {"tiny-a": {}})
    port = stack["tiny-a"].port or 0
    with socket.socket() as squatter:
        # The port may still be in TIME_WAIT from an earlier test; a listener holds it all the same.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(PortInUseError) as err:
            supervisor.up(run_dir, stack)
    assert f"port {port} (tiny-a)" in err.value.message and "nothing was started" in err.value.message
    assert f"pid {os.getpid()}" in err.value.message  # who holds it
    assert not run_dir.log_file("valkey").exists()
    assert not run_dir.has_state() or not run_dir.load_state().processes


def test_process_dying_at_start_fails_with_its_log_tail(tmp_path: Path, run_dir: RunDir) -> None:
    stack = _stack(tmp_path, {"tiny-a": {}, "broken": {"command": dead_command("boom: no config")}})
    with pytest.raises(StartupError) as err:
        supervisor.up(run_dir, stack, timeout=30)
    assert "broken (exited with code 1)" in err.value.message and "tiny-a" not in err.value.message
    assert "boom: no config" in (err.value.detail or "")
    states = {s.name: s.state for s in supervisor.status(run_dir)}
    assert states == {"valkey": "ready", "nats": "ready", "tiny-a": "ready", "broken": "dead"}


def test_service_never_ready_times_out_naming_the_probe(tmp_path: Path, run_dir: RunDir) -> None:
    stack = _stack(tmp_path, {"sick": {"env": {"TINY_HEALTH": "503"}}})
    with pytest.raises(StartupError) as err:
        supervisor.up(run_dir, stack, timeout=3)
    assert "sick (not ready in time (/health answered 503))" in err.value.message


def test_stale_state_from_dead_processes(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    rec = ProcessRecord("gone", os.getpid(), 1, ["x"], str(rd.log_file("gone")), started_at=1.0)
    rd.save_state(StackState(processes={"gone": rec}))
    assert [(s.name, s.state, s.alive) for s in supervisor.status(rd)] == [("gone", "dead", False)]
    assert [s.state for s in supervisor.down(rd)] == ["dead"]  # our own pid: never signalled
    assert not rd.has_state()


def test_find_ours_guards_against_pid_reuse() -> None:
    me = processes.find_ours(os.getpid(), psutil.Process().create_time())
    assert me is not None
    assert processes.find_ours(os.getpid(), 12345.0) is None
    assert processes.find_ours(None, 0.0) is None


def test_plan_selects_enabled_existing_services_and_closures(tmp_path: Path) -> None:
    stack = _stack(tmp_path, {"a": {}, "b": {"depends_on": ["a"]}, "off": {"enabled": False}})
    assert [c.name for c in plan(stack)] == ["valkey", "nats", "lake", "a", "b"]
    assert [c.name for c in plan(stack, ["b"])] == ["valkey", "nats", "a", "b"]
    assert [c.name for c in plan(stack, ["off"])] == ["valkey", "nats", "off"]
    with pytest.raises(UsageError, match="unknown service 'nope'"):
        plan(stack, ["nope"])


def test_plan_skips_services_whose_code_is_missing(tmp_path: Path) -> None:
    stack = _stack(tmp_path, {"ghost": {"app": "services.no_such_service.app:app"}})
    assert "ghost" not in [c.name for c in plan(stack)]
    with pytest.raises(UsageError, match="no code for ghost"):
        plan(stack, ["ghost"])


def test_log_tail_of_unknown_process_lists_the_logs(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    rd.log_file("tiny").write_text("".join(f"line {i}\n" for i in range(100)))
    assert supervisor.log_tail(rd, "tiny", 3) == "line 97\nline 98\nline 99"
    with pytest.raises(UsageError) as err:
        supervisor.log_tail(rd, "nope")
    assert "tiny" in (err.value.detail or "")


def test_a_pid_whose_command_differs_is_never_signalled(tmp_path: Path) -> None:
    """A state.json naming another program's pid with its start time got that program
    killed, and "stopped 2" was printed for 1."""
    import subprocess
    import sys

    from typer.testing import CliRunner

    from trade_ops.cli import app

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        rd = RunDir(tmp_path / "run")
        rd.ensure_writable()
        started = psutil.Process(other.pid).create_time()
        rec = ProcessRecord("oms", other.pid, 1, [sys.executable, "-m", "services", "oms"],
                            str(rd.log_file("oms")), started_at=started)
        assert processes.find_ours(other.pid, started) is not None  # start time alone would say ours
        rd.save_state(StackState(processes={"oms": rec}))
        result = CliRunner().invoke(app, ["down", "--run-dir", str(rd.path)])
        assert result.exit_code == 0, result.output
        assert "stopped 0 processes" in result.output and "not running already: oms" in result.output
        assert other.poll() is None  # alive: never signalled
    finally:
        other.kill()
        other.wait()


def test_a_truncated_state_is_salvaged_and_down_stops_all_it_can_find(tmp_path: Path,
                                                                      run_dir: RunDir) -> None:
    """A truncated state.json made every command, down included, exit 3 and left valkey running."""
    stack = _stack(tmp_path, {"tiny-a": {}, "tiny-b": {}})
    started = supervisor.up(run_dir, stack, timeout=30)
    raw = run_dir.state_file.read_bytes()
    run_dir.state_file.write_bytes(raw[: len(raw) // 3])  # the later records are lost
    salvaged = run_dir.load_state()
    assert salvaged.offset == stack.offset and len(salvaged.processes) < len(started)
    assert {s.name for s in supervisor.status(run_dir)} == set(salvaged.processes)
    stopped = supervisor.down(run_dir, grace=2.0)
    assert {s.name for s in stopped if s.state == "stopped"} == {s.name for s in started}
    assert all(gone(s.pid) for s in started)
    assert not run_dir.has_state()


def test_a_second_up_on_a_held_run_directory_refuses_with_one_line(tmp_path: Path, run_dir: RunDir) -> None:
    """Two ups at once: one crashed on the shared state.tmp, the other said "all ready"
    over dead infrastructure."""
    import subprocess

    stack_file = write_stack(tmp_path / "stack.toml", {"tiny-a": {}})
    run_dir.ensure_writable()
    with run_dir.lock():
        second = subprocess.run([*CLI, "up", "--stack", str(stack_file), "--run-dir", str(run_dir.path),
                                 "--port-offset", str(free_offset(stack_file))],
                                capture_output=True, text=True, timeout=60)
    assert second.returncode == 3, second.stderr
    lines = [line for line in second.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "another trade-ops command" in lines[0] and str(os.getpid()) in lines[0]
    assert "Traceback" not in second.stderr and not run_dir.has_state()


@contextlib.contextmanager
def _held_by_another_process(rd: RunDir) -> Iterator[None]:
    """The run directory's lock held by another process (as an `up` holds it while it starts)."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from trade_ops.rundir import RunDir\n"
         f"with RunDir({str(rd.path)!r}).lock():\n print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.communicate("", timeout=10)  # stdin closed: it lets go and exits


def test_a_dead_stack_of_another_runtime_is_cleared_only_under_the_lock(tmp_path: Path) -> None:
    """`up` cleared a dead stack's state before taking the run directory's lock: while
    another command held it (and could be writing a new state), the state went anyway."""
    from trade_ops import runtime
    from trade_ops.errors import RunDirError

    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    dead = ProcessRecord("gone", 2**22 + 7, None, ["x"], "", 1.0)
    rd.save_state(StackState(runtime="process", processes={"gone": dead}))
    with _held_by_another_process(rd), pytest.raises(RunDirError, match="another trade-ops command"):
        runtime.claim(rd, "docker")
    assert rd.load_state().processes == {"gone": dead}  # kept for the holder
    runtime.claim(rd, "docker")  # the lock free: the dead stack's state is cleared
    assert not rd.has_state()


def test_restart_reads_what_to_restart_under_the_lock(tmp_path: Path) -> None:
    """restart read the recorded names before taking the lock: an `up` holding it, that had
    not written its state yet, made restart say no stack runs (or name processes it was
    replacing) instead of that the run directory is busy."""
    from trade_ops.errors import RunDirError

    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    with _held_by_another_process(rd), pytest.raises(RunDirError, match="another trade-ops command"):
        supervisor.restart(rd)
    with pytest.raises(RunDirError, match="no stack"):
        supervisor.restart(rd)
    with pytest.raises(RunDirError, match="no stack"):
        supervisor.restart(RunDir(tmp_path / "never-made"))
    assert not (tmp_path / "never-made").exists()


def test_state_writes_never_share_a_temporary_file(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    states = [StackState(offset=i) for i in range(50)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(rd.save_state, states))  # raced on one state.tmp: FileNotFoundError
    assert rd.load_state().offset in range(50)
    assert not list(rd.path.glob("*.tmp"))


def test_a_readiness_probe_of_a_port_speaking_another_protocol_is_not_ready(nats_server: Proc) -> None:
    # nats-server greets with an INFO line: http.client raised BadStatusLine through `up` and
    # `doctor --up` (a traceback) when a service's port was held by such a program
    from trade_ops.readiness import http_status

    assert http_status(f"http://127.0.0.1:{nats_server.port}/livez", timeout=2.0) is None


def test_an_endless_state_file_is_read_no_further_than_a_bound(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    rd.state_file.symlink_to("/dev/zero")
    assert rd.load_state().processes == {}
    assert supervisor.down(rd) == []
