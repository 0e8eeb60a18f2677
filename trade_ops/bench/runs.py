"""Saved runs: `RUN_DIR/runs/NAME.json` (format trade-ops-run/1) and `NAME.hgrm`.

    {"format": "trade-ops-run/1", "name", "created_at",
     "meta": {"git_revision", "git_dirty", "packages", "host": {"cpu", "cores", "platform", "python",
              "loadavg"}, "command": the bench command that re-makes this run, as it runs},
     "repeats": [{"results", "intervals"}] for --repeat N > 1 (each run's own figures),
     "scenario": {"name", "hash", "definition", "source", "overrides"},
     "settings": {"target", "url", "model", "rate", "duration_s", "concurrency", "requests", "warmup"},
     "calibration": {"overhead_p50_ms", "overhead_p99_ms", "max_rate"} | null,
     "results": the --json document,
     "histograms": {"latency", "service_time", "schedule_lag"},   # HdrHistogram.encode(), microseconds
     "intervals": [{"start_s", "end_s", "count", "errors", "partial", "latency", "service_time"}]}
    results.conditions: {"before", "after": host_conditions(), "steal_pct"}
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

__all__ = ["FORMAT", "RunExists", "build_run", "check_name", "conditions_between", "histograms",
           "host_conditions", "host_meta", "latest_run", "load_run", "refuse_existing", "run_meta",
           "save_run"]

FORMAT = "trade-ops-run/1"
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


def host_conditions() -> dict[str, Any]:
    """The host's load right now: 1/5/15-minute load average and cumulative CPU ticks
    (steal among them), so two snapshots give the steal share between them."""
    out: dict[str, Any] = {"loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        out["cpu_ticks"] = sum(fields[:8])
        out["steal_ticks"] = fields[7] if len(fields) > 7 else 0
    except (OSError, ValueError, IndexError):
        pass
    return out


def conditions_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """{before, after, steal_pct}: the steal share of CPU time between the two snapshots."""
    steal = None
    ticks = (after.get("cpu_ticks") or 0) - (before.get("cpu_ticks") or 0)
    if ticks > 0 and "steal_ticks" in before and "steal_ticks" in after:
        steal = round(100.0 * (after["steal_ticks"] - before["steal_ticks"]) / ticks, 2)
    return {"before": before, "after": after, "steal_pct": steal}


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
              analysis: Analysis, command: str | None = None,
              repeats: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "meta": {**run_meta(), "command": command},
        "repeats": repeats or [],
        "scenario": scenario,
        "settings": settings,
        "calibration": calibration,
        "results": results,
        "histograms": analysis.histograms_json(),
        "intervals": [iv.to_json() for iv in analysis.intervals],
    }


class RunExists(UsageError):
    """--save NAME where a run NAME is already saved, without --force (exit 2)."""


def refuse_existing(name: str, runs_dir: Path) -> None:
    path = runs_dir / f"{check_name(name)}.json"
    if path.exists():
        raise RunExists(f"a run named {name!r} is already saved ({path})",
                        detail="pick another --save name, or add --force to replace it")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"run name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def save_run(doc: dict[str, Any], analysis: Analysis, runs_dir: Path) -> tuple[Path, Path]:
    name = check_name(doc["name"])
    runs_dir.mkdir(parents=True, exist_ok=True)
    path, hgrm = runs_dir / f"{name}.json", runs_dir / f"{name}.hgrm"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
    hgrm.write_text(hist.percentile_text(analysis.latency))
    return path, hgrm


def load_run(name_or_path: str | Path, runs_dir: Path | None = None) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        from trade_ops.rundir import RunDir

        path = (runs_dir or RunDir().runs) / f"{name_or_path}.json"
    try:
        doc: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"no saved run at {path}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"saved run {path} is not valid JSON: {exc}") from None
    if doc.get("format") != FORMAT:
        raise UsageError(f"{path} is not a {FORMAT} document")
    return doc


def latest_run(base_urls: set[str], runs_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest saved run by its own `created_at` (never a file's mtime: a checkout sets
    that) whose target is one of these base URLs (this stack's services); None if none is."""
    bases = {u.rstrip("/") for u in base_urls}
    found: list[tuple[datetime, Path, dict[str, Any]]] = []
    for path in runs_dir.glob("*.json") if runs_dir.is_dir() else []:
        try:
            doc = orjson.loads(path.read_bytes())
            created = datetime.fromisoformat(doc["created_at"])
            url = str(doc["settings"]["url"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if doc.get("format") == FORMAT and any(url == b or url.startswith(b + "/") for b in bases):
            found.append((created if created.tzinfo else created.replace(tzinfo=UTC), path, doc))
    if not found:
        return None
    _, path, doc = max(found, key=lambda item: item[0])
    return path, doc


def histograms(doc: dict[str, Any]) -> dict[str, HdrHistogram]:
    return {k: hist.decode(v) for k, v in doc["histograms"].items()}
