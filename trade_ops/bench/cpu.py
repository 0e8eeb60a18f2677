"""Where the CPU goes: CPU time per request of every process of the running stack.

Latency says how long a request took; this says what it cost. Sampled from the
supervisor's records (user + system time) before and after a run, divided by the
requests sent, it shows which process bounds the capacity: on a machine with N cores,
no load above N / (CPU seconds per request) can be sustained.

Background work (gateway ticks, sinks, consumers' timers) costs CPU with no order in
flight. Each process's idle rate is measured for a moment before the run and subtracted
over the run's length, so a process is charged only what the requests added; a part
below zero (noise) counts as zero, and the stack's total is the sum of its parts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil

from trade_ops import processes
from trade_ops.rundir import RunDir

__all__ = ["IDLE_SAMPLE_S", "CpuMeter", "cpu_summary"]

IDLE_SAMPLE_S = 1.0
GENERATOR = "(load generator)"


def _cpu_s(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return float(t.user + t.system)
    except psutil.Error:
        return None


class CpuMeter:
    """CPU seconds of the stack's live processes (and of this generator), sampled twice."""

    def __init__(self, procs: dict[str, psutil.Process]) -> None:
        self.procs = {**procs, GENERATOR: psutil.Process(os.getpid())}
        self.before: dict[str, float | None] = {}
        self.started = 0.0
        self.idle_per_s: dict[str, float] = {}  # CPU seconds per second with no load

    def measure_idle(self, seconds: float = IDLE_SAMPLE_S) -> None:
        """Each process's background CPU rate, measured while this generator sends nothing."""
        first = self._sample()
        t0 = time.monotonic()
        time.sleep(seconds)
        second, elapsed = self._sample(), time.monotonic() - t0
        self.idle_per_s = {name: (second[name] - b) / elapsed for name, b in first.items()  # type: ignore[operator]
                           if b is not None and second.get(name) is not None and name != GENERATOR}

    def _sample(self) -> dict[str, float | None]:
        return {name: _cpu_s(p) for name, p in self.procs.items()}

    @classmethod
    def for_run_dir(cls, run_dir: Path) -> CpuMeter | None:
        """A meter over the stack trade-ops started in `run_dir`, or None if there is none."""
        rd = RunDir(run_dir)
        if not rd.has_state():
            return None
        if rd.load_state().runtime == "docker":  # the containers' main processes, seen from here
            from trade_ops.runtime.docker import main_processes

            live = main_processes(rd)
            return cls(live) if live else None
        found = {name: processes.find_ours(rec.pid, rec.started_at, rec.command)
                 for name, rec in rd.load_state().processes.items()}
        live = {name: p for name, p in found.items() if p is not None}
        return cls(live) if live else None

    def start(self) -> None:
        self.before = self._sample()
        self.started = time.monotonic()

    def stop(self, requests: int) -> dict[str, Any] | None:
        """CPU ms per request by process (idle rate subtracted), biggest first, and the total."""
        if requests <= 0 or not self.before:
            return None
        elapsed = time.monotonic() - self.started
        after = self._sample()
        gross: dict[str, float] = {}
        idle: dict[str, float] = {}
        for name, before in self.before.items():
            if before is not None and after.get(name) is not None:
                gross[name] = (after[name] - before) * 1000.0 / requests  # type: ignore[operator]
                idle[name] = self.idle_per_s.get(name, 0.0) * elapsed * 1000.0 / requests
        return cpu_summary(gross, requests, idle)


def cpu_summary(gross_ms: dict[str, float], requests: int,
                idle_ms: dict[str, float] | None = None) -> dict[str, Any]:
    """The document saved with a run. Each part is gross minus idle, at least 0; the stack's
    total is the sum of its parts (the load generator is shown, not counted)."""
    idle_ms = idle_ms or {}
    net = {k: max(v - idle_ms.get(k, 0.0), 0.0) for k, v in gross_ms.items()}
    stack = {k: v for k, v in net.items() if k != GENERATOR}
    parts = {k: round(v, 4) for k, v in sorted(stack.items(), key=lambda kv: -kv[1])}
    total = sum(parts.values())
    cores = os.cpu_count() or 1
    return {
        "requests": requests,
        "ms_per_request": parts,
        "generator_ms_per_request": round(net.get(GENERATOR, 0.0), 4),
        "gross_ms_per_request": {k: round(v, 4) for k, v in gross_ms.items() if k != GENERATOR},
        "idle_ms_per_request": {k: round(v, 4) for k, v in idle_ms.items() if k != GENERATOR},
        "idle_subtracted": bool(idle_ms),
        "stack_ms_per_request": round(total, 4),
        "cores": cores,
        # An estimate: assumes CPU is the only limit and every core does nothing but this work.
        "bound_rate": round(cores * 1000.0 / total, 1) if total > 0 else None,
    }
