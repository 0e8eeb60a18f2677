"""The process runtime: start, watch and stop a stack as local processes, valkey and
nats first, then every service at once. Its public surface is what a runtime offers
(a second one, e.g. Docker, can sit beside it with the same functions):

    up(run_dir, stack, only=)     check every port, start what is not running, wait until ready
    status(run_dir)               each recorded process: alive or dead, ready or not, uptime
    down(run_dir)                 SIGTERM each process group, SIGKILL after a grace, verify gone
    restart(run_dir, names)       stop the named processes (default: all), start them again
    logs_of(run_dir, names)       the current log file of each process (one per start)
    log_tail(run_dir, name, n)    the last lines the *current* process of `name` wrote

Ctrl-C during `up` stops what that `up` had started (an Interrupted error says what).

State lives in the run directory (see rundir.py), written as soon as a process starts,
so `down` cleans up even after an `up` that failed half-way.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import psutil

from services import env as env_names
from trade_ops import credentials, identity, infra, logfiles, processes, readiness
from trade_ops.childenv import least_env
from trade_ops.errors import (
    Interrupted,
    RunDirError,
    StackFileError,
    StartupError,
    UsageError,
)
from trade_ops.plan import LOG_TAIL_LINES, ProcessStatus, check_port_range, check_ports, component_ports, plan
from trade_ops.rundir import RUN_DIR_ENV, ProcessRecord, RunDir, StackState
from trade_ops.stack import Component, Stack

__all__ = ["down", "follow_log", "log_tail", "logs_of", "restart", "status", "stop", "up"]

Progress = Callable[[ProcessStatus], None]


def _status(rec: ProcessRecord, state: str, alive: bool) -> ProcessStatus:
    uptime = round(processes.uptime(rec.started_at), 3) if alive else None
    return ProcessStatus(rec.name, rec.kind, rec.pid, rec.port, state, alive, uptime, rec.restarts,
                         rec.ready_s, Path(rec.log))


# -- up ------------------------------------------------------------------------------
def _command(c: Component, stack: Stack, run_dir: RunDir) -> tuple[list[str], dict[str, str]]:
    """The command line and the least environment (childenv.py) of a component."""
    secrets = run_dir.secrets
    if c.kind == "valkey":
        data = run_dir.valkey_data
        credentials.private_dir(data)  # its append-only file holds every order
        return (infra.valkey_command(c.port or 0, data, c.host, run_dir.durability(),
                                     secrets / "valkey.conf"), least_env(c.env))
    if c.kind == "nats":
        credentials.private_dir(run_dir.nats_store)
        return (infra.nats_command(c.port or 0, c.monitor_port, run_dir.nats_store, c.host,
                                   run_dir.durability(), secrets / "nats.conf"), least_env(c.env))
    if not c.command:
        raise StackFileError(f"service {c.name!r} has no command in the stack file")
    settings = {**stack.service_env(c.name, run_dir.path),
                **credentials.service_env(run_dir.path, c.name)}
    return c.start_command(), least_env(settings, lake_uri=stack.lake_uri(run_dir.path))


def _load_or_new_state(run_dir: RunDir, stack: Stack) -> StackState:
    stack_file = None if stack.source == "builtin" else str(Path(stack.source).resolve())
    if not run_dir.has_state():
        return StackState(offset=stack.offset, stack_file=stack_file, started_at=time.time())
    state = run_dir.load_state()
    alive = [n for n, r in state.processes.items() if processes.find_ours(r.pid, r.started_at, r.command)]
    if alive and state.offset != stack.offset:
        raise UsageError(f"a stack is running from {run_dir.path} at port offset {state.offset}",
                         detail="stop it with `trade-ops down`, or use another --run-dir")
    if not alive:  # a stale state: start afresh, but keep counting restarts
        state.offset, state.stack_file, state.started_at = stack.offset, stack_file, time.time()
    return state


def _exited(rec: ProcessRecord) -> Callable[[], str | None]:
    def check() -> str | None:
        code = processes.exit_code(rec.pid)
        if code is not None:
            return f"exited with code {code}"
        if processes.find_ours(rec.pid, rec.started_at, rec.command):
            return None
        # it may have exited between the two looks (a zombie is no longer "ours"): its code now
        code = processes.exit_code(rec.pid)
        return f"exited with code {code}" if code is not None else "exited"

    return check


def _instance(run_dir: RunDir, c: Component) -> str | None:
    return identity.expected(run_dir.path, c.name) if c.is_service else None


def _start(batch: list[Component], stack: Stack, run_dir: RunDir, state: StackState,
           report: Progress, started: list[str]) -> None:
    ids = identity.assign(run_dir.path, [c.name for c in batch if c.is_service])
    for c in batch:
        cmd, env = _command(c, stack, run_dir)
        if c.is_service:  # its /livez answers it: `up` is ready only when it does (identity.py)
            env[env_names.INSTANCE_ID] = ids[c.name]
        log = logfiles.new_log(run_dir.logs, c.name)
        with log.open("a") as f:
            f.write(logfiles.marker(c.name, "starting: " + " ".join(cmd)))
        previous = state.processes.get(c.name)
        pid, at = processes.spawn(cmd, log, env, c.nice)
        started.append(c.name)
        with log.open("a") as f:
            f.write(logfiles.marker(c.name, f"started, pid {pid}"))
        rec = ProcessRecord(c.name, pid, c.port, cmd, str(log), at,
                            restarts=previous.restarts + 1 if previous else 0, kind=c.kind)
        state.processes[c.name] = rec
        run_dir.save_state(state)  # at once: a later failure must not orphan this one
        report(_status(rec, "running", True))


def _wait(batch: list[Component], run_dir: RunDir, state: StackState, fresh: set[str], deadline: float,
          report: Progress) -> list[tuple[ProcessStatus, str]]:
    """Wait for the whole batch concurrently; the statuses, and why each failure failed."""
    results: list[tuple[ProcessStatus, str]] = []
    if not batch:
        return results
    cancel = threading.Event()  # set on Ctrl-C, so the waiting threads end within a probe
    pool = ThreadPoolExecutor(max_workers=len(batch), thread_name_prefix="ready")
    try:
        futures = {pool.submit(readiness.wait_ready, c, _exited(state.processes[c.name]), deadline,
                               cancel=cancel, instance=_instance(run_dir, c),
                               login=readiness.login_for(run_dir.path, c)): c for c in batch}
        for future in as_completed(futures):
            c = futures[future]
            rec, outcome = state.processes[c.name], future.result()
            if outcome.ready:
                if c.name in fresh:
                    rec.ready_s = round(outcome.seconds, 3)
                    run_dir.save_state(state)
                st = _status(rec, "ready", True)
            else:
                st = _status(rec, "failed", alive=not outcome.dead)
            report(st)
            results.append((st, outcome.reason or ""))
    finally:
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def _raise_failures(results: list[tuple[ProcessStatus, str]]) -> None:
    failed = [(st, why) for st, why in results if st.state != "ready"]
    if not failed:
        return
    names = ", ".join(f"{st.name} ({why})" for st, why in failed)
    tails = [f"--- {st.log} (last {LOG_TAIL_LINES} lines) ---\n"
             f"{logfiles.tail(st.log, LOG_TAIL_LINES) or '(empty)'}" for st, _ in failed[:3]]
    raise StartupError(f"could not start {names}", detail="\n".join(tails))


def _ensure_lake(stack: Stack, run_dir: RunDir) -> None:
    uri = stack.lake_uri(run_dir.path)
    if "://" not in uri:
        try:
            credentials.private_dir(Path(uri))
        except OSError as exc:
            raise RunDirError(f"lake directory {uri} cannot be created: {exc.strerror or exc}") from None


def up(run_dir: RunDir, stack: Stack, *, only: list[str] | None = None, timeout: float = 30.0,
       on_progress: Progress | None = None) -> list[ProcessStatus]:
    """Start what is not running (infra first, then all services at once); wait until ready."""
    deadline = time.monotonic() + timeout
    report: Progress = on_progress or (lambda _st: None)
    components = [c for c in plan(stack, only) if c.kind != "lake"]
    check_port_range(components, stack.offset)
    run_dir.ensure_writable()
    with run_dir.lock():  # a second `up` here refuses; the state is ours until we return
        return _up_locked(run_dir, stack, components, deadline, report)


def _up_locked(run_dir: RunDir, stack: Stack, components: list[Component], deadline: float,
               report: Progress) -> list[ProcessStatus]:
    state = _load_or_new_state(run_dir, stack)
    infra.stream_bytes_scale(run_dir.path)  # sized to the disk before anything starts, or why not
    running = {n for n, r in state.processes.items() if processes.find_ours(r.pid, r.started_at, r.command)}
    fresh = {c.name for c in components} - running
    check_ports([c for c in components if c.name in fresh])
    _ensure_lake(stack, run_dir)
    credentials.prepare(run_dir.path, stack)
    run_dir.save_state(state)

    results: list[tuple[ProcessStatus, str]] = []
    started: list[str] = []
    try:
        services = [c for c in components if c.is_service]
        for batch in ([c for c in components if not c.is_service], services):
            # The operator's streams and durables, before any service; also when NATS alone
            # was started again (`up --only nats`: its store may have been lost).
            if batch is services and (services or any(c.kind == "nats" for c in components)):
                from trade_ops.topology import provision_stack  # nats-py: only when a stack starts

                provision_stack(run_dir.path, stack)
            _start([c for c in batch if c.name in fresh], stack, run_dir, state, report, started)
            results += _wait(batch, run_dir, state, fresh, deadline, report)
            _raise_failures(results)  # services need the infrastructure: stop at its failure
    except KeyboardInterrupt:
        stopped = _stop_after_interrupt(run_dir, started)
        raise Interrupted(f"interrupted: stopped the {len(stopped)} processes this `up` had started"
                          + (f" ({', '.join(stopped)})" if stopped else ""),
                          detail="what was running before is left running") from None
    order = {c.name: i for i, c in enumerate(components)}
    return sorted((st for st, _ in results), key=lambda st: order[st.name])


def _stop_after_interrupt(run_dir: RunDir, names: list[str]) -> list[str]:
    """Stop `names` with a second Ctrl-C held off, so the clean-up itself is not cut short."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return [st.name for st in stop(run_dir, names, grace=2.0) if not st.alive]
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


# -- status and down ---------------------------------------------------------------------
def _stack_or_none(run_dir: RunDir) -> Stack | None:
    try:
        return run_dir.stack()
    except (StackFileError, UsageError, RunDirError):  # a moved stack file: still show the pids
        return None


def status(run_dir: RunDir) -> list[ProcessStatus]:
    """Each recorded process: ready (answers its probe), running, or dead."""
    if not run_dir.has_state():
        return []
    state = run_dir.load_state()
    stack = _stack_or_none(run_dir)
    recs = list(state.processes.values())

    def one(rec: ProcessRecord) -> ProcessStatus:
        if not processes.find_ours(rec.pid, rec.started_at, rec.command):
            return _status(rec, "dead", False)
        comp = stack.components.get(rec.name) if stack else None
        ready = comp is not None and readiness.probe(comp, 1.0, _instance(run_dir, comp),
                                                     readiness.login_for(run_dir.path, comp)) is None
        return _status(rec, "ready" if ready else "running", True)

    with ThreadPoolExecutor(max_workers=max(1, len(recs)), thread_name_prefix="ps") as pool:
        return list(pool.map(one, recs))


def down(run_dir: RunDir, *, grace: float = 3.0) -> list[ProcessStatus]:
    """Stop every recorded process: services first (they may flush to the infra), then infra."""
    return stop(run_dir, None, grace=grace)


def stop(run_dir: RunDir, names: list[str] | None, *, grace: float = 3.0,
         forget: bool = True) -> list[ProcessStatus]:
    """Stop the named recorded processes (all when None), services first, then infra.

    Each status says what happened: "stopped" (it ran and was stopped), "dead" (it was not
    running, or its pid is another process's now: never signalled), "running" (it survived).
    With `names` None, a process that listens on one of the stack's ports and was started
    for this run directory is stopped too, recorded or not (a lost or corrupt state).
    With `forget`, the stopped ones leave the state (and the state goes when empty);
    without, they stay recorded so a restart counts on from them.
    """
    if not run_dir.path.is_dir():
        return []
    with run_dir.lock():
        state = run_dir.load_state() if run_dir.has_state() else StackState()
        chosen = [r for r in state.processes.values() if names is None or r.name in names]
        if names is None:
            chosen += _unrecorded(run_dir, state)
        out: list[ProcessStatus] = []
        for group in ([r for r in chosen if r.kind == "service"], [r for r in chosen if r.kind != "service"]):
            live = {r.name: p for r in group if (p := processes.find_ours(r.pid, r.started_at, r.command))}
            left = {p.pid for p in processes.stop(live.values(), grace)}
            for rec in group:
                still = rec.name in live and live[rec.name].pid in left
                if not still and forget:
                    state.processes.pop(rec.name, None)
                out.append(_status(rec, "running" if still else "stopped" if rec.name in live else "dead",
                                   still))
        if state.processes:
            run_dir.save_state(state)
        else:
            run_dir.clear_state()
        return out


def _unrecorded(run_dir: RunDir, state: StackState) -> list[ProcessRecord]:
    """Processes listening on the stack's ports, started for this run directory, that the
    state does not hold (as records of what they run now, so `stop` treats them alike)."""
    stack = _stack_or_none(run_dir)
    if stack is None:
        return []
    recorded = {r.pid for r in state.processes.values()}
    ports = {p: c for c in stack.components.values() for p in component_ports(c)}
    out: list[ProcessRecord] = []
    for port, proc in processes.listeners(ports).items():
        c = ports[port]
        if proc.pid in recorded or c.name in state.processes or any(r.name == c.name for r in out):
            continue
        if processes.runs_from(proc, run_dir.path, RUN_DIR_ENV):
            try:
                rec = ProcessRecord(c.name, proc.pid, c.port, proc.cmdline(), "", proc.create_time(),
                                    kind=c.kind)
            except psutil.Error:
                continue
            out.append(rec)
    return out


def restart(run_dir: RunDir, names: list[str] | None = None, *, grace: float = 3.0, timeout: float = 30.0,
            on_progress: Progress | None = None) -> list[ProcessStatus]:
    """Stop the named processes (default: every recorded one) and start them again, as `up` would.
    The names are read under the run directory's lock: an `up` holding it may be rewriting them."""
    if not run_dir.path.is_dir():  # taking the lock would make the directory
        raise run_dir.no_stack_error()
    with run_dir.lock():
        recorded = list(run_dir.load_state().processes) if run_dir.has_state() else []
        if not recorded:  # restart names what runs; none recorded: nothing to restart
            raise run_dir.no_stack_error()
        unknown = [n for n in names or [] if n not in recorded]
        if unknown:
            raise UsageError(f"no process {', '.join(map(repr, unknown))} in the stack at {run_dir.path}",
                             detail=f"its processes: {', '.join(recorded)}")
        chosen = names or recorded
        stack = run_dir.stack()
        stop(run_dir, chosen, grace=grace, forget=False)
        return [st for st in up(run_dir, stack, only=chosen, timeout=timeout, on_progress=on_progress)
                if st.name in chosen]


# -- logs --------------------------------------------------------------------------------
def logs_of(run_dir: RunDir, names: list[str] | None = None) -> dict[str, Path]:
    """The current log of each named process (default: every process with a log here)."""
    recorded = run_dir.load_state().processes if run_dir.has_state() else {}
    known = sorted(set(recorded) | set(logfiles.names_in(run_dir.logs)))
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UsageError(f"no log for {', '.join(map(repr, unknown))} in {run_dir.logs}",
                         detail=f"logs here: {', '.join(known)}" if known else "no logs here yet")
    out: dict[str, Path] = {}
    for name in names or known:
        # The record names the current process's own file; without one, NAME.log (the latest).
        out[name] = Path(recorded[name].log) if name in recorded else run_dir.log_file(name)
    return out


def log_tail(run_dir: RunDir, name: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines that the current process of `name` wrote (never an older one's)."""
    return logfiles.tail(logs_of(run_dir, [name])[name], lines)


def follow_log(run_dir: RunDir, name: str, lines: int = LOG_TAIL_LINES,
               interval: float = 0.2) -> Iterator[str]:
    """The tail, then new text as it is written (like `tail -f`); runs until closed."""
    path = logs_of(run_dir, [name])[name]
    first = logfiles.tail(path, lines)
    yield first + "\n" if first else ""
    for line in logfiles.follow({name: path}, interval):
        yield line.text + "\n"
