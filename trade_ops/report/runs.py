"""Saved bench runs for a comparison: read by the one reader (savedruns.py), each interval's
latency decoded once (report/dist.py) for the many percentiles a report asks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec

from trade_ops.report.dist import Dist, decode_dist
from trade_ops.savedruns import BenchResult, Interval, RunMeta, RunSettings, SavedRun, read_run

__all__ = ["Run", "load_run"]


@dataclass
class Run:
    name: str
    path: Path
    saved: SavedRun

    @property
    def scenario(self) -> dict[str, Any]:
        return self.saved.scenario

    @property
    def settings(self) -> RunSettings:
        return self.saved.settings

    @property
    def results(self) -> BenchResult:
        return self.saved.results

    @property
    def meta(self) -> RunMeta:
        return self.saved.meta

    @cached_property
    def latency(self) -> Dist:
        return decode_dist(self.saved.histograms["latency"])

    @cached_property
    def all_intervals(self) -> list[Interval[Dist]]:
        """Every interval saved, partial ones too (plots show them), its latency decoded."""
        span = self.results.duration_s
        # runs saved before intervals were marked: one reaching past the measured span is partial
        return [Interval(start_s=iv.start_s, end_s=iv.end_s, count=iv.count, completed=iv.completed,
                         errors=iv.errors, latency=decode_dist(iv.latency),
                         partial=iv.partial if iv.partial is not None else iv.end_s > span + 1e-6)
                for iv in self.saved.intervals]

    @cached_property
    def intervals(self) -> list[Interval[Dist]]:
        """The full intervals: the ones comparisons use."""
        return [iv for iv in self.all_intervals if not iv.partial]

    @cached_property
    def repeats(self) -> list[Run]:
        """With --repeat N: each run on its own (its results and intervals); else this run alone."""
        if not self.saved.repeats:
            return [self]
        return [Run(f"{self.name}#{k + 1}", self.path,
                    msgspec.structs.replace(self.saved, results=r.results, intervals=r.intervals, repeats=[]))
                for k, r in enumerate(self.saved.repeats)]


def load_run(ref: str | Path, runs_dir: Path | None = None) -> Run:
    """The saved run named `ref` (or at that path), read by the one reader (savedruns.py)."""
    path, saved = read_run(ref, runs_dir)
    return Run(name=saved.name or path.stem, path=path, saved=saved)
