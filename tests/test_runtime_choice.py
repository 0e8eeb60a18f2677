"""Which runtime a start uses, and what a command asks of a runtime instead of its name (pure
logic and this process's own records: no engine, no stack)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from trade_ops import runtime
from trade_ops.context import Context
from trade_ops.rundir import ProcessRecord, RunDir, StackState

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def no_runtime_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.RUNTIME_ENV, raising=False)


def test_a_start_takes_the_flag_then_the_env_then_the_recorded_runtime(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rd = RunDir(tmp_path / "run")
    assert runtime.choose(rd).name == "process"  # nothing recorded, nothing named
    rd.ensure_writable()
    rd.save_state(StackState(runtime="docker", started_at=time.time()))  # a stack recorded as Docker
    assert runtime.choose(rd).name == "docker"  # `doctor --up` started processes here
    assert runtime.choose(rd, "docker").name == "docker"
    monkeypatch.setenv(runtime.RUNTIME_ENV, "docker")
    assert runtime.choose(RunDir(tmp_path / "other")).name == "docker"


def test_the_process_runtime_answers_what_is_alive_and_its_processes(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.ensure_writable()
    me = psutil.Process()
    rd.save_state(StackState(started_at=time.time(), processes={
        "me": ProcessRecord("me", os.getpid(), None, me.cmdline(), "", me.create_time()),
        "gone": ProcessRecord("gone", 2**22 + 7, None, ["x"], "", 1.0)}))
    ctx = Context.resolve(rd.path)
    assert ctx.running() == ["me"] == runtime.running(rd)
    assert ctx.runtime.processes(rd)["me"].pid == os.getpid() and ctx.runtime.containers(rd) is None
    runtime.require_running(rd)
    with pytest.raises(Exception, match="no stack is running"):
        runtime.require_running(RunDir(tmp_path / "empty"))


def test_the_context_moves_the_stack_by_the_offset_given(tmp_path: Path) -> None:
    ctx = Context.resolve(tmp_path / "run", port_offset=1000)
    assert ctx.stack.offset == 1000 and ctx.stack["oms"].port == 9099
    assert ctx.credentials is None and ctx.run_dir.lake == tmp_path / "run" / "lake"
