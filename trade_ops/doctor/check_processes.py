"""Processes and logs: dead processes, restarts, errors and tracebacks since each started."""

from __future__ import annotations

import re
from pathlib import Path

from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Process, Target
from trade_ops.processes import uptime

__all__ = ["TAIL_LINES", "check_process", "dead_tasks", "scan_log", "since_start", "tail"]

TAIL_LINES = 20
_SCAN_BYTES = 2 << 20
_DEAD_TASK = re.compile(r"background task (\S+) died")
_ERROR = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|CRITICAL|FATAL)\b|\[(ERR|FTL)\]")


def _read_tail_bytes(path: Path, limit: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    return _read_tail_bytes(path, 64 << 10).splitlines()[-lines:]


def since_start(text: str, pid: int | None) -> str:
    """The log from the first line the process with `pid` wrote.

    A restarted process appends to the same log: only the lines from the first one that
    names this pid count (uvicorn's "Started server process [pid]", valkey's "pid=N,",
    nats-server's "[N] " prefix), not the errors of the processes before it."""
    if pid is not None:
        found = [at for marker in (f"Started server process [{pid}]", f"pid={pid},", f"[{pid}] ")
                 if (at := text.find(marker)) >= 0]
        if found:
            return text[text.rfind("\n", 0, min(found)) + 1:]
    return text


def dead_tasks(text: str, pid: int | None = None) -> list[str]:
    """Background tasks (consumers, flushers) the kit logged as dead since the process started."""
    return list(dict.fromkeys(_DEAD_TASK.findall(since_start(text, pid))))


def scan_log(text: str, pid: int | None = None) -> tuple[int, int, str | None]:
    """(errors, tracebacks, first error line) since the process with `pid` started."""
    text = since_start(text, pid)
    errors = tracebacks = 0
    first: str | None = None
    for line in text.splitlines():
        if _ERROR.search(line):
            if "Traceback" in line:
                tracebacks += 1
            else:
                errors += 1
            first = first or line.strip()[:200]
    return errors, tracebacks, first


RECENT_RESTART_S = 60.0  # a process restarted within this is still news (or flapping)


def check_process(target: Target, p: Process, r: CheckResult) -> None:
    r.data.update(pid=p.pid, state=p.state, restarts=p.restarts, log=str(p.log))
    if not p.alive or p.state in ("dead", "failed", "stopped"):
        r.summary = f"{p.state} (pid {p.pid})"
        r.log_tail = tail(p.log)
        r.fail(f"process {p.name} is {p.state} (pid {p.pid}); last lines of {p.log} "
               f"(all of it: {target.logs_remedy(p.name)})", target.up_remedy(p.name))
        return
    if p.state == "suspended":
        r.summary = f"suspended (pid {p.pid})"
        r.fail(f"process {p.name} is suspended (SIGSTOP): it holds its port and answers nothing",
               f"kill -CONT {p.pid}")
        return
    r.summary = f"pid {p.pid}"
    if p.restarts:
        # The current process is judged, not its history: restarts are news while it is young.
        times = f"restarted {p.restarts} time{'s' if p.restarts > 1 else ''}"
        up = uptime(p.started_at) if p.started_at else 0.0
        if up < RECENT_RESTART_S:
            r.warn(f"{times}, the last {up:.0f}s ago", target.logs_remedy(p.name))
        else:
            r.details.append(f"{times}; the current process has run {up:.0f}s")
    text = _read_tail_bytes(p.log, _SCAN_BYTES)
    dead = dead_tasks(text, p.pid)
    if dead:  # it answers /health and does not do its job: not healthy
        r.summary = f"background task {', '.join(dead)} died"
        r.log_tail = tail(p.log, 5)
        r.fail(f"background task {', '.join(dead)} died in {p.name} (pid {p.pid}): it still answers, and "
               f"no longer consumes or flushes (see {target.logs_remedy(p.name)})", _restart(target, p))
    errors, tracebacks, first = scan_log(text, p.pid)
    r.data.update(log_errors=errors, log_tracebacks=tracebacks)
    if (errors or tracebacks) and not dead:
        r.warn(f"{errors} error line(s), {tracebacks} traceback(s) in its log since it started: {first}",
               target.logs_remedy(p.name))
        r.log_tail = tail(p.log, 5)
    elif not dead:
        r.summary += " · no errors in logs"


def _restart(target: Target, p: Process) -> str:
    """Stop the process, wait until it is gone, start it again: one line that runs as printed."""
    if p.name not in target.processes:
        return target.logs_remedy(p.name)
    return (f"kill {p.pid} && while kill -0 {p.pid} 2>/dev/null; do sleep 0.1; done && "
            f"{target.up_remedy(p.name)}")
