"""CPU per request: idle rates subtracted, parts that add up to the total, an honest bound."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from trade_ops.bench.cpu import CpuMeter, cpu_summary
from trade_ops.bench.render import cpu_line

pytestmark = pytest.mark.process


def test_summary_sorts_and_bounds_by_the_stack_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    s = cpu_summary({"oms": 0.5, "nats": 1.5, "(load generator)": 3.0}, requests=1000)
    assert list(s.ms_per_request) == ["nats", "oms"]
    assert s.generator_ms_per_request == 3.0  # shown, not the stack's
    assert s.stack_ms_per_request == 2.0
    assert s.bound_rate == 1000.0  # 2 cores / 2 ms
    line = cpu_line(s)
    assert "2.00 ms on the stack = nats 1.50 + oms 0.50 ms" in line and "estimated bound 1,000/s" in line


def test_idle_rates_are_subtracted_and_parts_sum_to_the_total() -> None:
    # the case: a sink busy on its own timers was charged 1.27 ms per order
    s = cpu_summary({"oms": 2.0, "sink-ticks": 1.3, "gateway": 0.9, "nats": 0.05},
                    requests=1000, idle_ms={"oms": 0.1, "sink-ticks": 1.27, "gateway": 0.9, "nats": 0.2})
    parts = s.ms_per_request
    assert parts["sink-ticks"] == pytest.approx(0.03) and parts["gateway"] == 0.0
    assert parts["nats"] == 0.0  # below its idle rate: noise, not negative work
    assert s.stack_ms_per_request == pytest.approx(sum(parts.values()))
    assert all(v <= s.stack_ms_per_request for v in parts.values())
    assert s.idle_subtracted and "idle rates subtracted" in cpu_line(s)


def test_idle_stack_has_no_bound() -> None:
    s = cpu_summary({"oms": 0.0}, requests=10)
    assert s.bound_rate is None and "bound" not in cpu_line(s)


def test_meter_charges_a_busy_background_process_nothing() -> None:
    """A real process spinning at a steady rate, with no request in it, costs no CPU per request."""
    spin = ("import time\nwhile True:\n    t = time.perf_counter()\n"
            "    while time.perf_counter() - t < 0.02: pass\n    time.sleep(0.02)\n")
    proc = subprocess.Popen([sys.executable, "-c", spin])
    try:
        meter = CpuMeter({"busy": psutil.Process(proc.pid)})
        meter.measure_idle(1.0)
        meter.start()
        time.sleep(1.0)
        s = meter.stop(requests=100)
        assert s is not None
        # it burns about half a core, requests or not: that is its idle rate, and it is taken off
        idle, gross = s.idle_ms_per_request["busy"], s.gross_ms_per_request["busy"]
        assert idle > 0 and gross > 0  # (how much depends on how busy the host is)
        assert s.ms_per_request["busy"] == pytest.approx(max(gross - idle, 0.0), abs=1e-3)
        assert s.stack_ms_per_request == pytest.approx(sum(s.ms_per_request.values()))
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.unit
def test_the_generators_cpu_is_read_finer_than_a_clock_tick() -> None:
    # CI saw "generator 0.0 ms per request" after 300 requests: /proc counts CPU in 10 ms ticks
    meter = CpuMeter({})
    meter.start()
    end = time.process_time() + 0.003  # 3 ms of work, under one tick
    while time.process_time() < end:
        pass
    use = meter.stop(300)
    assert use is not None and (use.generator_ms_per_request or 0.0) >= 0.009  # 3 ms / 300
