"""The stack's logs, kept like compose keeps a container's: one file per process start.

    logs/NAME.20261129T232519.123.log   one per start, opened by a marker line with the pid
    logs/NAME.log                       a symlink to the current one (for `tail -f`)

Every line carries a timestamp: valkey and nats-server write their own, the services'
loggers (uvicorn's too) are configured with one, and lines without one (a traceback's)
take the time of the line before. So the logs of all processes interleave by time.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from trade_ops.errors import UsageError

__all__ = ["KEEP", "Line", "follow", "marker", "merged", "new_log", "parse_since", "read_lines", "tail"]

KEEP = 5  # log files kept per process: the current one and the 4 before it

_FORMATS: list[tuple[re.Pattern[str], str]] = [
    # trade-ops markers, the services (Python logging): 2026-11-29 23:25:19,123 / .123
    (re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)[.,](\d+)"), "%Y-%m-%d %H:%M:%S"),
    # nats-server: [123] 2026/11/29 23:25:19.123456 [INF] ...
    (re.compile(r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\.(\d+)"), "%Y/%m/%d %H:%M:%S"),
    # valkey-server: 123:M 29 Nov 2026 23:25:19.123 * ...
    (re.compile(r"(\d\d? \w{3} \d{4} \d\d:\d\d:\d\d)\.(\d+)"), "%d %b %Y %H:%M:%S"),
]


@dataclass(frozen=True, order=True)
class Line:
    time: float
    name: str
    text: str


def line_time(text: str) -> float | None:
    """The timestamp at the start of a log line (local time, as the processes write it)."""
    head = text[:64]
    for pattern, fmt in _FORMATS:
        found = pattern.search(head)
        if found:
            with contextlib.suppress(ValueError):
                stamp = datetime.strptime(found.group(1).replace("T", " "), fmt)
                return stamp.timestamp() + float("0." + found.group(2))
    return None


def _stamp(fmt: str) -> str:
    now = time.time()
    return time.strftime(fmt, time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def marker(name: str, what: str) -> str:
    """A line of our own in a process's log, timestamped like the services' lines."""
    return f"{_stamp('%Y-%m-%d %H:%M:%S')} trade-ops: {name} {what}\n"


def new_log(logs: Path, name: str) -> Path:
    """A fresh log file for a start of `name`; `NAME.log` points at it; old ones pruned."""
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"{name}.{_stamp('%Y%m%dT%H%M%S')}.log"
    path.touch()
    link = logs / f"{name}.log"
    tmp = logs / f".{name}.log.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(path.name)
    tmp.replace(link)  # atomic: a reader sees the old file or the new one
    for old in sorted(logs.glob(f"{glob_escape(name)}.*.log"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log file, reading only its end."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max(lines, 1) * 1024))
            data = f.read()
    except OSError:
        return ""
    text = data.decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""


def read_lines(name: str, path: Path, last: int | None = None) -> list[Line]:
    """Every line of a log (the `last` ones alone: only the file's end is read), each with its
    time (a line without one takes the previous line's)."""
    if last is not None:
        text = tail(path, last)
    else:
        try:
            text = path.read_bytes().decode(errors="replace")
        except OSError:
            return []
    out: list[Line] = []
    when = 0.0
    for raw in text.splitlines():
        when = line_time(raw) or when
        out.append(Line(when, name, raw))
    return out


def merged(logs: dict[str, Path], since: float | None = None, lines: int | None = None) -> list[Line]:
    """The lines of several logs interleaved by time, from `since`, the last `lines` of them."""
    # The last N of all are among the last N of each: without `since`, only the files' ends are read.
    last = lines if since is None and lines is not None and lines >= 0 else None
    each = [read_lines(name, path, last) for name, path in sorted(logs.items())]
    out = [ln for ln in heapq.merge(*each, key=lambda ln: ln.time) if since is None or ln.time >= since]
    return out[-lines:] if lines is not None and lines >= 0 else out


def follow(logs: dict[str, Path], interval: float = 0.2) -> Generator[Line, None, None]:
    """New lines of each log as they are written (like `tail -f`); runs until closed.

    The logs are opened now, at their current end: nothing written after this call is missed.
    """
    handles: dict[str, tuple[Path, BinaryIO, bytes]] = {}
    for name, path in logs.items():
        with contextlib.suppress(OSError):
            f = path.open("rb")
            f.seek(0, os.SEEK_END)
            handles[name] = (path, f, b"")
    return _follow(handles, interval)


def _follow(handles: dict[str, tuple[Path, BinaryIO, bytes]], interval: float) -> Generator[Line, None, None]:
    try:
        while True:
            quiet = True
            for name, (path, f, rest) in list(handles.items()):
                chunk = f.read()
                if not chunk:
                    if path.exists() and path.stat().st_size < f.tell():  # truncated: start over
                        f.seek(0)
                    continue
                quiet = False
                *whole, rest = (rest + chunk).split(b"\n")
                handles[name] = (path, f, rest)
                for raw in whole:
                    text = raw.decode(errors="replace")
                    yield Line(line_time(text) or time.time(), name, text)
            if quiet:
                time.sleep(interval)
    finally:
        for _, f, _ in handles.values():
            f.close()


_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """`--since`: a duration ago (30s, 5m, 2h, 1d) or a time (2026-11-29T23:25:00, 23:25)."""
    now = time.time() if now is None else now
    value = text.strip()
    found = _AGO.match(value)
    if found:
        return now - float(found.group(1)) * _UNIT[found.group(2)]
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(value, fmt).timestamp()
    for fmt in ("%H:%M:%S", "%H:%M"):
        with contextlib.suppress(ValueError):
            clock = datetime.strptime(value, fmt).time()
            return datetime.combine(datetime.fromtimestamp(now).date(), clock).timestamp()
    raise UsageError(f"--since {text!r} is neither a duration nor a time",
                     detail="use e.g. --since 30s, 5m, 2h, 1d, 23:25 or 2026-11-29T23:25:00")


def names_in(logs: Path) -> list[str]:
    """The processes with a log in `logs` (from the NAME.log links and files)."""
    if not logs.is_dir():
        return []
    return sorted({p.name.split(".", 1)[0] for p in logs.glob("*.log") if not p.name.startswith(".")})


def existing(paths: Iterable[tuple[str, Path]]) -> dict[str, Path]:
    return {name: path for name, path in paths if path.exists()}
