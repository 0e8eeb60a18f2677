"""Saved bench runs: found by name in the run directory's runs/ or by path, checked, decoded."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from trade_ops.errors import UsageError
from trade_ops.report.dist import Dist, decode_dist
from trade_ops.savedruns import read_run

__all__ = ["Interval", "Run", "load_run"]



@dataclass(frozen=True)
class Interval:
    start_s: float
    end_s: float
    count: int
    errors: int
    latency: Dist
    partial: bool = False
    completed: int | None = None  # answers that came back in it (runs saved before: not recorded)

    @property
    def mid_s(self) -> float:
        return (self.start_s + self.end_s) / 2

    @property
    def rate(self) -> float:
        """What the target delivered in it: answers back (else requests asked for) per second."""
        span = self.end_s - self.start_s
        delivered = self.completed if self.completed is not None else self.count
        return delivered / span if span > 0 else 0.0


@dataclass
class Run:
    name: str
    path: Path
    doc: dict[str, Any]

    @property
    def scenario(self) -> dict[str, Any]:
        return self.doc.get("scenario") or {}

    @property
    def settings(self) -> dict[str, Any]:
        return self.doc.get("settings") or {}

    @property
    def results(self) -> dict[str, Any]:
        return self.doc.get("results") or {}

    @property
    def meta(self) -> dict[str, Any]:
        return self.doc.get("meta") or {}

    @cached_property
    def latency(self) -> Dist:
        return decode_dist(self.doc["histograms"]["latency"])

    @cached_property
    def all_intervals(self) -> list[Interval]:
        """Every interval saved, partial ones too (plots show them)."""
        span = float(self.results.get("duration_s") or 0.0)
        out = []
        for raw in self.doc.get("intervals") or []:
            start, end = float(raw["start_s"]), float(raw["end_s"])
            # runs saved before intervals were marked: one reaching past the measured span is partial
            partial = bool(raw["partial"]) if "partial" in raw else end > span + 1e-6
            completed = raw.get("completed")
            out.append(Interval(start, end, int(raw.get("count", 0)), int(raw.get("errors", 0)),
                                decode_dist(raw["latency"]), partial,
                                int(completed) if completed is not None else None))
        return out

    @cached_property
    def intervals(self) -> list[Interval]:
        """The full intervals: the ones comparisons use."""
        return [iv for iv in self.all_intervals if not iv.partial]

    @cached_property
    def repeats(self) -> list[Run]:
        """With --repeat N: each run on its own (its results and intervals); else this run alone."""
        each = self.doc.get("repeats") or []
        if not each:
            return [self]
        return [Run(f"{self.name}#{k + 1}", self.path,
                    {"results": r.get("results") or {}, "intervals": r.get("intervals") or [],
                     "histograms": self.doc.get("histograms")})
                for k, r in enumerate(each)]


def load_run(ref: str | Path, runs_dir: Path | None = None) -> Run:
    """The saved run named `ref` (or at that path), read by the one reader (savedruns.py)."""
    path, doc = read_run(ref, runs_dir)
    for key in ("results", "histograms"):
        if not isinstance(doc.get(key), dict):
            raise UsageError(f"run file {path} has no {key!r} section")
    return Run(name=str(doc.get("name") or path.stem), path=path, doc=doc)
