"""The generator runs ahead of what it measures: on a 2-core host shared with a 16-process
stack, its schedule lag comes from waiting for a CPU. For the length of a load it raises
its own priority (nice, and its session's autogroup nice, which is what the kernel weighs
between sessions) when it may, and puts both back afterwards. Without the privilege to
raise it, the run goes on at normal priority and says so."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["GENERATOR_NICE", "raised_priority"]

GENERATOR_NICE = -10
_AUTOGROUP = Path("/proc/self/autogroup")


def _autogroup_nice() -> int | None:
    try:  # "/autogroup-123 nice 0"
        return int(_AUTOGROUP.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def raised_priority(nice: int = GENERATOR_NICE) -> Iterator[int | None]:
    """Yield the nice value in force (None when it could not be raised)."""
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
