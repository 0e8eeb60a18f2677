"""CPU that adds up over the work, and overload that is said (issue 24, item 3).

A 200/s run that delivered 174.6/s gave no warning and its plot showed 200 in every second;
CPU per request counted only the load's window, so the work the pipeline finished after
the last answer was dropped (1.80 ms an order for a 1.2 s run against 5.2 ms for a long one).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest
from typer.testing import CliRunner

from tests.helpers import CLEAN_ENV, start_delay_app
from trade_ops.bench.cpu import CpuMeter, cpu_summary
from trade_ops.bench.loadgen import LoadSpec, Raw
from trade_ops.bench.null_server import NullServer
from trade_ops.bench.render import cpu_line
from trade_ops.bench.results import analyse
from trade_ops.bench.target import OK
from trade_ops.cli import app

pytestmark = pytest.mark.process



def _raw(rate: float, delivered: float, n: int = 400) -> Raw:
    """n requests asked for at `rate`, answered at `delivered` per second (a queue when slower)."""
    raw = Raw(planned=n)
    for i in range(n):
        intended = i / rate
        done = max(intended, i / delivered) + 0.002
        raw.add(i, intended, intended, intended, done, OK, 200)
    return raw


def test_a_run_that_delivered_less_than_asked_is_flagged_overloaded() -> None:
    spec = LoadSpec(model="open", rate=200.0, duration_s=2.0)
    slow = analyse(_raw(200.0, 174.6), spec).result
    assert slow.overloaded and "delivered 174.6/s of the 200/s asked (-12.7%)" in (slow.overload or "")
    # the per-second plot shows what came back, not what was asked
    assert max(iv.completed or 0 for iv in analyse(_raw(200.0, 174.6), spec).intervals) <= 176
    kept_up = analyse(_raw(200.0, 200.0), spec).result
    assert not kept_up.overloaded and kept_up.overload is None


@pytest.fixture
def capacity_100(tmp_path: Path) -> Iterator[str]:
    """A real service that serves one request at a time, 10 ms each: 100 requests a second."""
    proc = start_delay_app(tmp_path, BUSY_MS="10")
    try:
        yield f"{proc.url}/check"
    finally:
        proc.stop()


def test_overload_is_said_in_text_json_and_the_report(capacity_100: str, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["bench", "http", "--url", capacity_100, "--rate", "300", "-d", "1.5", "--timeout", "30",
            "--run-dir", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--json", "--save", "busy"], env=CLEAN_ENV, catch_exceptions=False)
    doc = orjson.loads(result.stdout)
    assert doc["overloaded"] and doc["delivered_rate"] < 0.95 * 300, doc
    text = runner.invoke(app, args, env=CLEAN_ENV, catch_exceptions=False).output
    assert "OVERLOADED: delivered" in text, text
    out = tmp_path / "R.md"
    report = runner.invoke(app, ["report", "perf", "busy", "busy", "--out", str(out), "--run-dir",
                                 str(tmp_path / "run")], env=CLEAN_ENV, catch_exceptions=False)
    assert report.exit_code == 0, report.output
    assert "**OVERLOADED**: delivered" in out.read_text()
    with NullServer() as fast:  # a target far faster than the rate keeps up
        ok = runner.invoke(app, ["bench", "http", "--url", fast, "--rate", "50", "-d", "1", "--json",
                                 "--run-dir", str(tmp_path / "run")], env=CLEAN_ENV, catch_exceptions=False)
    assert orjson.loads(ok.stdout)["overloaded"] is False


def test_cpu_counts_the_work_the_run_left_until_the_stack_is_idle() -> None:
    """A real process that works on (spins) for a while after the load has ended, as a
    consumer catching up does: the meter waits until it is idle again and counts it."""
    tail = ("import sys, time\nsys.stdin.readline()\nend = time.perf_counter() + 0.8\n"
            "while time.perf_counter() < end: pass\nsys.stdin.readline()\n")
    proc = subprocess.Popen([sys.executable, "-c", tail], stdin=subprocess.PIPE, text=True)
    try:
        worker = psutil.Process(proc.pid)
        meter = CpuMeter({"consumer": worker})
        meter.measure_idle(0.3)
        meter.start()
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        time.sleep(0.1)  # the load ends here; the consumer is still busy
        s = meter.stop(requests=100)
        spent = sum(worker.cpu_times()[:2])
        assert s is not None and s.settled and (s.settle_s or 0) > 0.2, s
        # what the work cost was counted, not the load's 0.1 s of it
        assert s.gross_ms_per_request["consumer"] * 100 / 1000 >= 0.8 * spent, (s, spent)
        assert "counted until the stack was idle again" in cpu_line(s)
    finally:
        proc.kill()
        proc.wait(5)


def test_the_bound_says_what_it_assumes_and_counts_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside a CPU hog the bound read 1,024/s while the run delivered 174.6/s."""
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    s = cpu_summary({"oms": 2.0}, requests=1000, others_cores=1.5)
    assert s.bound_rate == 1000.0 and s.bound_rate_free == 250.0
    line = cpu_line(s)
    assert "1,000/s on all 2 cores, 250/s on the 0.5 other processes left free" in line
    assert "assumes CPU is the only limit" in line
