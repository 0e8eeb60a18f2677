"""doctor's NATS store check reads the server's log through the runtime (the process
runtime's log files here), only the end of it, and finds a recent store failure there."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from trade_ops import logfiles, runtime
from trade_ops.doctor.check_disk import LOG_LINES, STORE_FAILURE, store_problem
from trade_ops.rundir import RunDir

pytestmark = pytest.mark.unit


def _nats_line(at: float, text: str) -> str:
    stamp = datetime.fromtimestamp(at).strftime("%Y/%m/%d %H:%M:%S.%f")
    return f"[42] {stamp} [ERR] {text}"


def test_a_recent_store_failure_in_the_runtimes_log_asks_for_a_restart(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.logs.mkdir(parents=True)
    now = time.time()
    old = [_nats_line(now - 600 + i * 0.001, "JetStream resource usage ok") for i in range(5 * LOG_LINES)]
    recent = _nats_line(now - 2, f"JetStream failed to store a msg on stream 'EXEC': write: {STORE_FAILURE}")
    rd.log_file("nats").write_text("\n".join([*old, recent, _nats_line(now - 1, "client connected")]) + "\n")

    lines = runtime.get("process").log_lines(rd, ["nats"], lines=LOG_LINES)
    assert len(lines) == LOG_LINES and lines[-2].text == recent  # the end, and only the end
    problem = store_problem(tmp_path, lines, "", now=now)
    assert problem is not None and problem[1] == "trade-ops restart nats"
    assert store_problem(tmp_path, lines, "", now=now + 60) is None  # long past: storing again


def test_the_end_of_several_logs_is_the_end_of_all_of_them(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("".join(f"2026-01-01 00:00:{s:02d},000 a{s}\n" for s in range(0, 60, 2)))
    b.write_text("".join(f"2026-01-01 00:00:{s:02d},000 b{s}\n" for s in range(1, 60, 2)))
    logs = {"a": a, "b": b}
    whole = logfiles.merged(logs)
    assert logfiles.merged(logs, lines=7) == whole[-7:]
