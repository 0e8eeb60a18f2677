"""Background work that is restarted when it dies, and says so in /health.

    kit.spawn(lambda: consume(kit), "executions")

A task that raises is logged with its traceback and started again after a backoff
(0.5 s, doubling to 30 s; back to 0.5 s after a minute of good running). Its health
check `task:{name}` is pass while it runs, warn while it is being restarted (it died in
the last minute), fail when it keeps dying (FAIL_AFTER deaths within a minute) or has
ended. A task given as a bare coroutine cannot be started again: its death is a fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from services.kit.health import Check

__all__ = ["FAIL_AFTER", "TaskHealth", "Work", "supervise"]

log = logging.getLogger("services")

Work = Callable[[], Coroutine[Any, Any, Any]]
WINDOW_S = 60.0
FAIL_AFTER = 5
BACKOFF_S = (0.5, 30.0)


@dataclass
class TaskHealth:
    name: str
    restartable: bool = True
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=100))  # monotonic times
    last_error: str | None = None
    ended: bool = False
    restarting: bool = False

    def recent(self) -> int:
        now = time.monotonic()
        return sum(1 for t in self.deaths if now - t <= WINDOW_S)

    def check(self) -> Check:
        recent = self.recent()
        status: Any = "pass"
        output = None
        if self.ended:
            status, output = "fail", f"ended: {self.last_error or 'returned'}; not restarted"
        elif recent >= FAIL_AFTER:
            status, output = "fail", f"keeps dying ({recent} times in {WINDOW_S:g}s): {self.last_error}"
        elif recent or self.restarting:
            status, output = "warn", f"restarted after it died ({recent} in {WINDOW_S:g}s): {self.last_error}"
        return Check(f"task:{self.name}", "restarts", status, "component", len(self.deaths), None, output)


async def supervise(work: Work, health: TaskHealth) -> None:
    delay = BACKOFF_S[0]
    while True:
        started = time.monotonic()
        try:
            await work()
            health.ended, health.last_error = True, "returned"
            log.warning("background task %s returned; not restarted", health.name)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            health.deaths.append(time.monotonic())
            health.last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - started > WINDOW_S:
                delay = BACKOFF_S[0]
            if not health.restartable:
                health.ended = True
                log.error("background task %s died", health.name, exc_info=exc)
                return
            # "failed", not "died": doctor reads "background task X died" as dead for good
            log.error("background task %s failed; restarting in %.1fs", health.name, delay, exc_info=exc)
        health.restarting = True
        await asyncio.sleep(delay)
        health.restarting = False
        delay = min(delay * 2, BACKOFF_S[1])
