"""`doctor --serve`: the latest doctor result, renewed at most once per interval, on demand.

As the blackbox exporter probes when Prometheus scrapes, doctor runs when its result is
asked for and the last one is older than the interval; scrapes in between (and scrapes
that arrive while a run is going) get the same result. Nothing runs while nobody asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DoctorExporter"]

R = TypeVar("R")  # what a run gives: a DoctorReport


class DoctorExporter(Generic[R]):
    def __init__(self, run: Callable[[], R], interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._run, self.interval_s, self._clock = run, interval_s, clock
        self._lock = threading.Lock()
        self._doc: R | None = None
        self._done_at = 0.0  # on the clock, when the last run ended
        self.ran_at = 0.0  # Unix time the last run ended
        self.runs = 0

    def latest(self) -> R:
        """The last result, after running doctor first when it is older than the interval."""
        with self._lock:  # one run at a time: concurrent scrapes wait for it and share it
            if self._doc is None or self._clock() - self._done_at >= self.interval_s:
                self._doc = self._run()
                self._done_at, self.ran_at = self._clock(), time.time()
                self.runs += 1
            return self._doc
