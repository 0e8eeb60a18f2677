"""Saved bench runs on disk: `RUN_DIR/runs/NAME.json` in format trade-ops-run/1 (its fields
are drawn in trade_ops/bench/runs.py, their one writer). This is their one reader: by name
or path, with the errors a user can act on, and the newest run against a stack (for doctor).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import orjson

from trade_ops.errors import UsageError

__all__ = ["FORMAT", "SloResult", "check_name", "latest_run", "read_run", "run_path"]

FORMAT = "trade-ops-run/1"


class SloResult(msgspec.Struct, kw_only=True):
    """One SLO gate of a bench run: its expression, met or not, the figure observed."""
    expr: str
    passed: bool
    observed: str


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"run name {name!r} must be letters, digits, '.', '_' or '-'")
    return name


def run_path(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """A path as given if it is a file, else `runs_dir/REF.json` (REF being a saved run's name;
    the run directory's runs/, RunDir.runs, where bench saves them)."""
    path = Path(ref)
    if path.is_file():
        return path
    if runs_dir is None:
        raise UsageError(f"no saved run at {path}")
    named = runs_dir / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if named.is_file():
        return named
    known = sorted(p.stem for p in runs_dir.glob("*.json")) if runs_dir.is_dir() else []
    hint = f"saved runs in {runs_dir}: {', '.join(known)}" if known else f"no saved runs in {runs_dir}"
    raise UsageError(f"no run named or at {str(ref)!r}",
                     detail=f"{hint}\nsave one with `trade-ops bench oms --save NAME`")


def read_run(ref: str | Path, runs_dir: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The saved run named `ref` (or at that path): where it is and its document."""
    path = run_path(ref, runs_dir)
    try:
        doc: dict[str, Any] = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise UsageError(f"saved run {path} is unreadable: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"saved run {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UsageError(f"{path} is not a {FORMAT} document")
    return path, doc


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
