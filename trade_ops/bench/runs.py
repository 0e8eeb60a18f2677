"""Saved runs: `reports/runs/NAME.json` (format trade-ops-run/1) and `NAME.hgrm`.

    {"format": "trade-ops-run/1", "name", "created_at",
     "meta": {"git_revision", "git_dirty", "packages", "host": {"cpu", "cores", "platform", "python",
              "loadavg"}},
     "scenario": {"name", "hash", "definition", "source", "overrides"},
     "settings": {"target", "url", "model", "rate", "duration_s", "concurrency", "requests", "warmup"},
     "calibration": {"overhead_p50_ms", "overhead_p99_ms", "max_rate"} | null,
     "results": the --json document,
     "histograms": {"latency", "service_time", "schedule_lag"},   # HdrHistogram.encode(), microseconds
     "intervals": [{"start_s", "end_s", "count", "errors", "latency", "service_time"}]}
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from trade_ops.bench import hist
from trade_ops.bench.results import Analysis
from trade_ops.errors import UsageError

__all__ = ["FORMAT", "RUNS_DIR", "build_run", "histograms", "host_meta", "load_run", "run_meta", "save_run"]

FORMAT = "trade-ops-run/1"
RUNS_DIR = Path("reports/runs")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")
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


def host_meta() -> dict[str, Any]:
    load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {"cpu": _cpu(), "cores": os.cpu_count() or 1, "platform": platform.platform(),
            "python": platform.python_version(), "loadavg": load}


_SOURCE = Path(__file__).resolve().parents[2]


def _git(*args: str) -> str | None:
    """Git in the trade-ops source tree when it is one (an editable install), else here."""
    where = _SOURCE if (_SOURCE / ".git").exists() else None
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, check=True, cwd=where)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def run_meta() -> dict[str, Any]:
    packages: dict[str, str] = {}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            packages[name] = metadata.version(name)
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_revision": _git("rev-parse", "HEAD"),
            "git_dirty": bool(status) if status is not None else None,
            "packages": packages, "host": host_meta()}


def build_run(name: str, scenario: dict[str, Any], settings: dict[str, Any],
              calibration: dict[str, Any] | None, results: dict[str, Any],
              analysis: Analysis) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "meta": run_meta(),
        "scenario": scenario,
        "settings": settings,
        "calibration": calibration,
        "results": results,
        "histograms": analysis.histograms_json(),
        "intervals": [iv.to_json() for iv in analysis.intervals],
    }


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"run name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def save_run(doc: dict[str, Any], analysis: Analysis, runs_dir: Path = RUNS_DIR) -> tuple[Path, Path]:
    name = check_name(doc["name"])
    runs_dir.mkdir(parents=True, exist_ok=True)
    path, hgrm = runs_dir / f"{name}.json", runs_dir / f"{name}.hgrm"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    hgrm.write_text(hist.percentile_text(analysis.latency))
    return path, hgrm


def load_run(name_or_path: str | Path, runs_dir: Path = RUNS_DIR) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = runs_dir / f"{name_or_path}.json"
    try:
        doc: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"no saved run at {path}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"saved run {path} is not valid JSON: {exc}") from None
    if doc.get("format") != FORMAT:
        raise UsageError(f"{path} is not a {FORMAT} document")
    return doc


def histograms(doc: dict[str, Any]) -> dict[str, HdrHistogram]:
    return {k: hist.decode(v) for k, v in doc["histograms"].items()}
