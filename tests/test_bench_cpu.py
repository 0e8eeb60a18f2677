"""CPU per request: the summary saved with a run and the line shown under the table."""

from __future__ import annotations

from trade_ops.bench.cpu import cpu_summary
from trade_ops.bench.render import cpu_line


def test_summary_sorts_and_bounds_by_the_stack_alone(monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    s = cpu_summary({"oms": 0.5, "nats": 1.5, "(load generator)": 3.0}, requests=1000)
    assert list(s["ms_per_request"]) == ["(load generator)", "nats", "oms"]
    assert s["stack_ms_per_request"] == 2.0  # the generator is not the stack
    assert s["bound_rate"] == 1000.0  # 2 cores / 2 ms
    assert "2.00 ms on the stack" in cpu_line(s) and "at most 1,000/s on 2 cores" in cpu_line(s)


def test_idle_stack_has_no_bound() -> None:
    s = cpu_summary({"oms": 0.0}, requests=10)
    assert s["bound_rate"] is None and "at most" not in cpu_line(s)
