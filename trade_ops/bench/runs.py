"""Saved runs, written: `RUN_DIR/runs/NAME.json` (a SavedRun, format trade-ops-run/1: its
fields are drawn in trade_ops/savedruns.py, their one reader) and `NAME.hgrm`.

    meta: {"git_revision", "git_dirty", "packages", "host": {"cpu", "cores", "platform", "python",
           "loadavg"}, "command": the bench command that re-makes this run, as it runs}
    settings: {"target", "url", "model", "rate", "duration_s", "concurrency", "requests", "warmup"}
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from trade_ops.bench import hist
from trade_ops.bench.results import Analysis
from trade_ops.errors import UsageError
from trade_ops.savedruns import (
    FORMAT,
    BenchResult,
    Calibration,
    Conditions,
    Host,
    HostLoad,
    Repeat,
    RunMeta,
    RunSettings,
    SavedRun,
    check_name,
    encode_run,
)

__all__ = ["RunExists", "build_run", "conditions_between", "histograms", "host_conditions", "host_meta",
           "refuse_existing", "run_meta", "save_run"]

_PACKAGES = ("trade-ops", "hdrhistogram", "uvloop", "httptools", "fastapi", "uvicorn", "orjson",
             "redis", "nats-py")


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_conditions() -> HostLoad:
    """The host's load right now: 1/5/15-minute load average and cumulative CPU ticks
    (steal among them), so two snapshots give the steal share between them."""
    out = HostLoad(loadavg=list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        out.cpu_ticks = sum(fields[:8])
        out.steal_ticks = fields[7] if len(fields) > 7 else 0
    except (OSError, ValueError, IndexError):
        pass
    return out


def conditions_between(before: HostLoad, after: HostLoad) -> Conditions:
    """The two snapshots and the steal share of CPU time between them."""
    steal = None
    ticks = (after.cpu_ticks or 0) - (before.cpu_ticks or 0)
    if ticks > 0 and before.steal_ticks is not None and after.steal_ticks is not None:
        steal = round(100.0 * (after.steal_ticks - before.steal_ticks) / ticks, 2)
    return Conditions(before=before, after=after, steal_pct=steal)


def host_meta() -> Host:
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return Host(cpu=_cpu(), cores=os.cpu_count() or 1, platform=platform.platform(),
                python=platform.python_version(), loadavg=load)


_SOURCE = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    """Git in the trade-ops source tree when it is one (an editable install), else here."""
    where = _SOURCE if (_SOURCE / ".git").exists() else None
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True, cwd=where)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def run_meta(command: str | None = None) -> RunMeta:
    packages: dict[str, str] = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    status = _git("status", "--porcelain", "--untracked-files=no")
    return RunMeta(git_revision=_git("rev-parse", "HEAD"),
                   git_dirty=bool(status) if status is not None else None,
                   packages=packages, host=host_meta(), command=command)


def build_run(name: str, scenario: dict[str, Any], settings: RunSettings,
              calibration: Calibration | None, results: BenchResult,
              analysis: Analysis, command: str | None = None,
              repeats: list[Analysis] | None = None) -> SavedRun:
    """The run to save; `repeats`: with --repeat N > 1, each run's own analysis."""
    return SavedRun(
        format=FORMAT,
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        meta=run_meta(command),
        repeats=[Repeat(results=a.result, intervals=a.intervals_saved()) for a in repeats or []],
        scenario=scenario,
        settings=settings,
        calibration=calibration.saved() if calibration else None,
        results=results,
        histograms=analysis.histograms_json(),
        intervals=analysis.intervals_saved(),
    )


class RunExists(UsageError):
    """--save NAME where a run NAME is already saved, without --force (exit 2)."""


def refuse_existing(name: str, runs_dir: Path) -> None:
    path = runs_dir / f"{check_name(name)}.json"
    if path.exists():
        raise RunExists(f"a run named {name!r} is already saved ({path})",
                        detail="pick another --save name, or add --force to replace it")


def save_run(run: SavedRun, analysis: Analysis, runs_dir: Path) -> tuple[Path, Path]:
    name = check_name(run.name)
    runs_dir.mkdir(parents=True, exist_ok=True)
    path, hgrm = runs_dir / f"{name}.json", runs_dir / f"{name}.hgrm"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(encode_run(run))
    tmp.replace(path)
    hgrm.write_text(hist.percentile_text(analysis.latency))
    return path, hgrm


def histograms(run: SavedRun) -> dict[str, HdrHistogram]:
    return {k: hist.decode(v) for k, v in run.histograms.items()}
