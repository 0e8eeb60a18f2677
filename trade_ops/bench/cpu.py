"""Where the CPU goes: CPU time per request of every process of the running stack.

Latency says how long a request took; this says what it cost. Sampled from the
supervisor's records (user + system time) before and after a run, divided by the
requests sent, it shows which process bounds the capacity: on a machine with N cores,
no load above N / (CPU seconds per request) can be sustained.

Background work (gateway ticks, sinks, consumers' timers) costs CPU with no order in
flight. Each process's idle rate is measured for a moment before the run and subtracted
over the run's length, so a process is charged only what the requests added; a part
below zero (noise) counts as zero, and the stack's total is the sum of its parts.

The work a run causes does not end with its last answer: fills, positions, the lake and
the audit trail follow behind, more so when the stack was overloaded and its consumers
queued. So the meter keeps counting after the load until the stack is idle again (its CPU
rate back near the idle rate measured before, at most SETTLE_MAX_S), and the run's
length for the idle subtraction includes that time. Counting the load's window alone
read 1.80 ms an order for a 1.2 s run against 5.2 ms for a long one.

The bound (cores / CPU per request) assumes CPU is the only limit. It is given twice: on
every core of the host, and on the cores other processes left free during the run (a
host busy with other work sustains less: a run beside a CPU hog read "bound 1,024/s" while
it delivered 174.6/s).
"""

from __future__ import annotations

import os
import time

import psutil

from trade_ops import runtime
from trade_ops.rundir import RunDir
from trade_ops.savedruns import CpuUse

__all__ = ["IDLE_SAMPLE_S", "SETTLE_MAX_S", "CpuMeter", "cpu_summary"]

IDLE_SAMPLE_S = 1.0
SETTLE_MAX_S = 10.0  # the longest the meter waits for the stack to be idle after a run
SETTLE_WINDOW_S = 0.25  # each look at the stack's CPU rate while it settles
SETTLE_SLACK_CORES = 0.05  # within this of the idle rate (or SETTLE_SLACK_SHARE of it, if more),
SETTLE_SLACK_SHARE = 0.25  # the stack is idle again
GENERATOR = "(load generator)"


def _host_busy_s() -> float:
    """CPU seconds the whole host spent busy (every core, every process) so far."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


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
        self.host_before = 0.0
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
        sample = {name: _cpu_s(p) for name, p in self.procs.items() if name != GENERATOR}
        # this process by the kernel's own CPU clock: /proc counts in 10 ms ticks, and a short
        # run's generator (300 requests at ~20 us) read as 0 ms per request
        sample[GENERATOR] = time.process_time()
        return sample

    @classmethod
    def for_run_dir(cls, rd: RunDir) -> CpuMeter | None:
        """A meter over the stack trade-ops started in `run_dir`, or None if there is none."""
        if not rd.has_state():
            return None
        live = runtime.of(rd).processes(rd)  # processes, or the containers' main processes seen from here
        return cls(live) if live else None

    def start(self) -> None:
        self.before = self._sample()
        self.host_before = _host_busy_s()
        self.started = time.monotonic()

    def settle(self, max_s: float = SETTLE_MAX_S) -> tuple[float, bool]:
        """Wait until the stack's CPU rate is back at its idle rate: (seconds waited, whether
        it was). Without a measured idle rate there is nothing to wait for."""
        stack = [n for n in self.procs if n != GENERATOR]
        if not self.idle_per_s or not stack:
            return 0.0, False
        idle = sum(self.idle_per_s.get(n, 0.0) for n in stack)
        t0 = time.monotonic()
        last = self._sample()
        while time.monotonic() - t0 < max_s:
            time.sleep(SETTLE_WINDOW_S)
            now = self._sample()
            used = sum((now[n] or 0.0) - (last[n] or 0.0) for n in stack
                       if now.get(n) is not None and last.get(n) is not None)
            last = now
            if used / SETTLE_WINDOW_S <= idle + max(SETTLE_SLACK_CORES, SETTLE_SLACK_SHARE * idle):
                return time.monotonic() - t0, True
        return time.monotonic() - t0, False

    def stop(self, requests: int, *, settle_max_s: float = SETTLE_MAX_S) -> CpuUse | None:
        """CPU ms per request by process (idle rate subtracted), biggest first, and the total,
        over the run and what it left the stack to do (`settle`)."""
        if requests <= 0 or not self.before:
            return None
        settle_s, settled = self.settle(settle_max_s)
        elapsed = time.monotonic() - self.started
        after = self._sample()
        gross: dict[str, float] = {}
        idle: dict[str, float] = {}
        for name, before in self.before.items():
            if before is not None and after.get(name) is not None:
                gross[name] = (after[name] - before) * 1000.0 / requests  # type: ignore[operator]
                idle[name] = self.idle_per_s.get(name, 0.0) * elapsed * 1000.0 / requests
        ours = sum((after.get(n) or b) - b for n, b in self.before.items() if b is not None)
        others = max(_host_busy_s() - self.host_before - ours, 0.0) / elapsed if elapsed > 0 else 0.0
        return cpu_summary(gross, requests, idle, settle_s=settle_s, settled=settled, others_cores=others)


def cpu_summary(gross_ms: dict[str, float], requests: int, idle_ms: dict[str, float] | None = None, *,
                settle_s: float | None = None, settled: bool = False,
                others_cores: float | None = None) -> CpuUse:
    """The document saved with a run. Each part is gross minus idle, at least 0; the stack's
    total is the sum of its parts (the load generator is shown, not counted). `settle_s`:
    how long after the load it was counted (until idle when `settled`); `others_cores`: the
    cores other processes of the host used meanwhile."""
    idle_ms = idle_ms or {}
    net = {k: max(v - idle_ms.get(k, 0.0), 0.0) for k, v in gross_ms.items()}
    stack = {k: v for k, v in net.items() if k != GENERATOR}
    parts = {k: round(v, 4) for k, v in sorted(stack.items(), key=lambda kv: -kv[1])}
    total = sum(parts.values())
    cores = os.cpu_count() or 1
    free = max(cores - others_cores, 0.0) if others_cores is not None else None
    return CpuUse(
        requests=requests,
        ms_per_request=parts,
        generator_ms_per_request=round(net.get(GENERATOR, 0.0), 4),
        gross_ms_per_request={k: round(v, 4) for k, v in gross_ms.items() if k != GENERATOR},
        idle_ms_per_request={k: round(v, 4) for k, v in idle_ms.items() if k != GENERATOR},
        idle_subtracted=bool(idle_ms),
        stack_ms_per_request=round(total, 4),
        cores=cores,
        settle_s=round(settle_s, 2) if settle_s is not None else None,
        settled=settled,
        # An estimate: assumes CPU is the only limit and every core does nothing but this work.
        bound_rate=round(cores * 1000.0 / total, 1) if total > 0 else None,
        # ... and on the cores the host's other processes left free during the run
        others_cores=round(others_cores, 2) if others_cores is not None else None,
        bound_rate_free=round(free * 1000.0 / total, 1) if total > 0 and free is not None else None,
        bound_assumes="CPU is the only limit and the cores counted do nothing but this work",
    )
