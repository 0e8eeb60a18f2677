"""User stack files for supervisor tests: the builtin 14 services disabled, tiny test
services in their place, and a port offset chosen so every port is free.

Disabling by `[defaults] enabled = false` keeps the real services out of these tests
even once their code exists, so the tests stay fast and deterministic.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.helpers import ROOT, wait_until
from trade_ops import infra
from trade_ops.plan import ProcessStatus
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import Stack, load_stack

__all__ = ["ROOT", "dead_command", "free_offset", "free_stack", "gone", "started", "tiny_command",
           "write_stack"]

# Offsets that keep every port below the kernel's ephemeral range (32768+), where free_port()
# fixtures and outgoing connections live: a port there can be taken between the check and
# the start. A test stack's ports are 100-110; the builtin stack's reach 8222.
_OFFSETS = range(20000, 32000, 100)
_EPHEMERAL = 32768  # Linux's default ip_local_port_range starts here
_BUILTIN_OFFSETS = range(10000, 24000, 37)


def tiny_command() -> list[str]:
    return ["{python}", "-m", "uvicorn", "tests.apps.tiny:app", "--app-dir", str(ROOT),
            "--host", "{host}", "--port", "{port}"]


def dead_command(message: str = "boom: no config") -> list[str]:
    return ["{python}", "-c", f"import sys; print({message!r}); sys.exit(1)"]


def write_stack(path: Path, services: dict[str, dict[str, object]]) -> Path:
    """A stack file: infra on ports 100-102, `services` (name -> fields) enabled, on 110+."""
    lines = ["[defaults]", "enabled = false",
             "[infra.valkey]", "port = 100",
             "[infra.nats]", "port = 101", "monitor_port = 102"]
    for i, (name, fields) in enumerate(services.items()):
        entry = {"port": 110 + i, "enabled": True, "depends_on": ["valkey", "nats"],
                 "command": tiny_command(), **fields}
        lines.append(f"[services.{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: object) -> str:
    if isinstance(value, dict):  # an inline table: { KEY = "value" }
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # strings, numbers, booleans and lists read the same in TOML


def _ports(stack: Stack) -> list[int]:
    wanted = [c for c in stack.components.values() if not c.is_service or c.enabled]
    return [p for c in wanted for p in (c.port, c.monitor_port) if p is not None]


def free_offset(stack_file: Path | None, avoid: set[int] | None = None) -> int:
    """An offset at which every port of the stack (None: the builtin one) is free (and none is
    in `avoid`)."""
    stack, avoid = load_stack(stack_file), avoid or set()
    offsets = _OFFSETS if stack_file is not None else _BUILTIN_OFFSETS
    for offset in random.sample(offsets, len(offsets)):
        ports = _ports(stack.with_offset(offset))
        if max(ports) >= _EPHEMERAL:  # the builtin stack's ports (4222-8222) shifted past 32768:
            continue  # a client's outgoing connection may take one while the stack starts
        if not avoid & set(ports) and not any(infra.port_in_use(p) for p in ports):
            return offset
    raise RuntimeError("no free port range for a test stack")


def gone(pid: int | None) -> bool:
    """The process is gone (or a zombie nobody reaped: it holds no port and runs nothing)."""
    try:
        return pid is None or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def free_stack() -> Stack:
    """The builtin 14-service stack at an offset where every one of its ports is free."""
    return load_stack().with_offset(free_offset(None))


@contextlib.contextmanager
def started(run_dir: RunDir, stack: Stack, timeout: float = 60.0) -> Iterator[list[ProcessStatus]]:
    """The stack started by the supervisor (its statuses), stopped afterwards whatever happened;
    every process it recorded is checked gone (a suspended one is resumed first, so it can stop)."""
    try:
        yield supervisor.up(run_dir, stack, timeout=timeout)
    finally:
        recs = list(run_dir.load_state().processes.values()) if run_dir.has_state() else []
        supervisor.down(run_dir, grace=2.0)
        for rec in recs:
            if not gone(rec.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(rec.pid, signal.SIGCONT)
        assert all(wait_until(functools.partial(gone, rec.pid), 5) for rec in recs)
