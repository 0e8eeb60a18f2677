"""The generator runs ahead of what it measures: on a 2-core host shared with a 16-process
stack, its schedule lag comes from waiting for a CPU. For the length of a load it raises
its own priority when it may, and puts it back afterwards:

- the real-time class (SCHED_FIFO at its lowest priority, 1): when its event loop's timer
  fires, it preempts every ordinary task at once instead of waiting for a CPU, which a nice
  value alone cannot give (schedule lag p99 against a null endpoint on a host at load 50:
  4-5 ms at nice -10, 1.2-1.6 ms in the real-time class).
  The generator sleeps between requests, and the kernel keeps at least 5% of each second for
  ordinary tasks (sched_rt_runtime_us), so the stack is never shut out;
- else (no CAP_SYS_NICE, as in most containers) nice -10, and its session's autogroup nice,
  which is what the kernel weighs between sessions.

Without the privilege for either, the run goes on at normal priority and says so."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GENERATOR_NICE", "Priority", "raised_priority"]

GENERATOR_NICE = -10
_AUTOGROUP = Path("/proc/self/autogroup")


@dataclass(frozen=True)
class Priority:
    nice: int | None = None  # the nice value in force (None: not raised)
    realtime: bool = False  # SCHED_FIFO for the generator's threads


def _autogroup_nice() -> int | None:
    try:  # "/autogroup-123 nice 0"
        return int(_AUTOGROUP.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def _realtime() -> Iterator[bool]:
    """SCHED_FIFO 1 for this thread and the threads it starts (not for processes it forks)."""
    if not hasattr(os, "sched_setscheduler"):
        yield False
        return
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0), os.sched_param(1))
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, policy, param)


@contextlib.contextmanager
def _nice(nice: int) -> Iterator[int | None]:
    before = os.getpriority(os.PRIO_PROCESS, 0)  # this thread; threads started inside inherit it
    group_before = _autogroup_nice()
    raised: int | None = None
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
        raised = nice
        if group_before is not None:
            _AUTOGROUP.write_text(str(nice))
    except OSError:
        pass
    try:
        yield raised
    finally:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, before)
        if group_before is not None and raised is not None:
            with contextlib.suppress(OSError):
                _AUTOGROUP.write_text(str(group_before))


@contextlib.contextmanager
def raised_priority(nice: int = GENERATOR_NICE) -> Iterator[Priority]:
    """Yield the priority in force. The nice value is raised too: it is what counts for the
    generator's share of CPU should the real-time class be refused."""
    with _nice(nice) as raised, _realtime() as realtime:
        yield Priority(raised, realtime)
