"""Where the CPU goes: CPU time per request of every process of the running stack.

Latency says how long a request took; this says what it cost. Sampled from the
supervisor's records (user + system time) before and after a run, divided by the
requests sent, it shows which process bounds the capacity: on a machine with N cores,
no load above N / (CPU seconds per request) can be sustained.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil

from trade_ops import processes
from trade_ops.rundir import RunDir

__all__ = ["CpuMeter", "cpu_summary"]


def _cpu_s(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


class CpuMeter:
    """CPU seconds of the stack's live processes (and of this generator), sampled twice."""

    def __init__(self, procs: dict[str, psutil.Process]) -> None:
        self.procs = {**procs, "(load generator)": psutil.Process(os.getpid())}
        self.before: dict[str, float | None] = {}

    @classmethod
    def for_run_dir(cls, run_dir: Path) -> CpuMeter | None:
        """A meter over the stack trade-ops started in `run_dir`, or None if there is none."""
        rd = RunDir(run_dir)
        if not rd.has_state():
            return None
        found = {name: processes.find_ours(rec.pid, rec.started_at)
                 for name, rec in rd.load_state().processes.items()}
        live = {name: p for name, p in found.items() if p is not None}
        return cls(live) if live else None

    def start(self) -> None:
        self.before = {name: _cpu_s(p) for name, p in self.procs.items()}

    def stop(self, requests: int) -> dict[str, Any] | None:
        """CPU ms per request by process, biggest first, and the total."""
        if requests <= 0 or not self.before:
            return None
        per: dict[str, float] = {}
        for name, p in self.procs.items():
            before, after = self.before.get(name), _cpu_s(p)
            if before is not None and after is not None:
                per[name] = (after - before) * 1000.0 / requests
        return cpu_summary(per, requests)


def cpu_summary(per_process_ms: dict[str, float], requests: int) -> dict[str, Any]:
    """The document saved with a run: the stack's total excludes the load generator."""
    stack = {k: v for k, v in per_process_ms.items() if not k.startswith("(")}
    total = sum(stack.values())
    cores = os.cpu_count() or 1
    return {
        "requests": requests,
        "ms_per_request": {k: round(v, 4) for k, v in
                           sorted(per_process_ms.items(), key=lambda kv: -kv[1])},
        "stack_ms_per_request": round(total, 4),
        "cores": cores,
        # Every core busy with nothing but this work: an upper bound on sustainable throughput.
        "bound_rate": round(cores * 1000.0 / total, 1) if total > 0 else None,
    }
