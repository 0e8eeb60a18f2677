"""The OS processes the supervisor starts: spawned detached, recognised later, stopped whole.

A process is recorded as (pid, create time, command line). A pid alone is not enough:
once ours exits the kernel may give its pid to an unrelated process, and `down` must
never signal that one; a create time alone is not either (a state file naming another
program's pid with its start time got that program killed), so the command must match.
Each process leads its own session (start_new_session), so its pid is its process group
and one signal reaches anything it spawned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import psutil

from trade_ops.errors import StartupError

__all__ = ["exit_code", "find_ours", "listeners", "port_holder", "runs_from", "same_command", "spawn", "stop",
           "uptime"]

# Popen objects of the processes this interpreter started: polling them reaps the
# children that exit while we still run (tests, a long `up`), so no zombie is left.
_children: dict[int, subprocess.Popen[bytes]] = {}

# Create times come from /proc in clock ticks; the same process always reads the same.
_SAME_START = 0.5


def spawn(command: list[str], log: Path, env: dict[str, str], nice: int = 0) -> tuple[int, float]:
    """Start `command` detached, output appended to `log`, at priority `nice`; its pid and create time.

    Under umask 077: what it writes (valkey's append-only file, the NATS store, the lake's
    tables, all holding orders and fills) is its user's alone (0600 files, 0700 folders)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            popen = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                     umask=0o077)
        except OSError as exc:
            raise StartupError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    _children[popen.pid] = popen
    if nice:
        _renice(popen.pid, nice)
    try:
        started = psutil.Process(popen.pid).create_time()
    except psutil.Error:  # already gone: the readiness wait reports how it exited
        started = time.time()
    return popen.pid, started


def _renice(pid: int, nice: int) -> None:
    """Lower a process's priority, set from outside (preexec_fn is unsafe with threads).

    Each process leads its own session, and with Linux's autogroup scheduling every
    session is its own group whose CPU share ignores its tasks' nice values: the group's
    nice (/proc/PID/autogroup) is the one that counts between our processes.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def exit_code(pid: int) -> int | None:
    """The exit code of a process this interpreter started, once it has exited."""
    popen = _children.get(pid)
    return popen.poll() if popen else None


def uptime(started_at: float) -> float:
    """Seconds since a process started, from its recorded create time.

    psutil dates processes from the boot time in whole seconds, so its create times run
    up to 1 s early; the boot clock gives the fraction back.
    """
    now = time.time()
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return now - started_at
    booted = now - time.clock_gettime(boottime)
    return max(0.0, now - started_at - (booted - float(psutil.boot_time())))


def same_command(proc: psutil.Process, command: Sequence[str]) -> bool:
    """Whether `proc` runs `command`: the same argv, or, for a server that retitles itself
    (valkey-server shows "valkey-server *:6379"), the same executable file."""
    try:
        argv = proc.cmdline()
        if argv == list(command):
            return True
        if argv and argv[0] == command[0]:  # the same program with other arguments: not ours
            return False
        return proc.exe() == os.path.realpath(command[0])
    except (psutil.Error, OSError):
        return False


def find_ours(pid: int | None, started_at: float, command: Sequence[str] = ()) -> psutil.Process | None:
    """The live process recorded as (pid, started_at, command), or None if it is gone or the
    pid belongs to another process (reused, or a state file naming someone else's)."""
    if not pid or not isinstance(pid, int) or pid <= 1:
        return None
    exit_code(pid)  # reap it first if it is our exited child
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started_at) > _SAME_START:
            return None
        if command and not same_command(proc, command):
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:  # exited; its parent has not reaped it
            return None
        return proc
    except psutil.Error:
        return None


def _gone(proc: psutil.Process) -> bool:
    exit_code(proc.pid)
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _signal_group(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:  # not a group leader (started by someone else): signal just the process
            proc.send_signal(sig)
    except (ProcessLookupError, psutil.Error):
        pass


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if not _gone(p)]
    return alive


def stop(procs: Iterable[psutil.Process], grace: float) -> list[psutil.Process]:
    """SIGTERM each process group, SIGKILL what is left after `grace`; the survivors."""
    procs = list(procs)
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    alive = _wait_gone(procs, grace)
    for proc in alive:
        _signal_group(proc, signal.SIGKILL)
    survivors = _wait_gone(alive, 2.0)
    for proc in procs:
        if proc not in survivors:
            _children.pop(proc.pid, None)
    return survivors


def listeners(ports: Iterable[int]) -> dict[int, psutil.Process]:
    """The process listening on each of `ports` that has one (as far as we may see)."""
    wanted, found = set(ports), {}
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port in wanted and conn.status == psutil.CONN_LISTEN and conn.pid:
                with contextlib.suppress(psutil.Error):
                    found[conn.laddr.port] = psutil.Process(conn.pid)
    return found


def runs_from(proc: psutil.Process, run_dir: Path, env_var: str) -> bool:
    """Whether `proc` was started for `run_dir`: the directory in its command line (nats's
    store), its working directory (valkey moves into its data directory and retitles
    itself) or its environment (a service's `env_var`)."""
    where = str(run_dir)
    try:
        if any(where in part for part in proc.cmdline()) or Path(proc.cwd()).is_relative_to(run_dir):
            return True
        return proc.environ().get(env_var) == where
    except psutil.Error:
        return False


def port_holder(port: int) -> str | None:
    """'pid 123 (python3)' for the process listening on `port`, when we may see it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except psutil.Error:
        pass
    return None
