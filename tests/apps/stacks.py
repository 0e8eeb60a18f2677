"""User stack files for supervisor tests: the builtin 14 services disabled, tiny test
services in their place, and a port offset chosen so every port is free.

Disabling by `[defaults] enabled = false` keeps the real services out of these tests
even once their code exists, so the tests stay fast and deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import psutil

from trade_ops import infra
from trade_ops.stack import Stack, load_stack

__all__ = ["ROOT", "dead_command", "free_offset", "gone", "tiny_command", "write_stack"]

ROOT = Path(__file__).resolve().parents[2]
# Offsets below the kernel's ephemeral range (32768+), where free_port() fixtures live.
_OFFSETS = range(20000, 32000, 100)
_EPHEMERAL = 32768  # Linux's default ip_local_port_range starts here


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


def free_offset(stack_file: Path, avoid: set[int] | None = None) -> int:
    """An offset at which every port of the stack is free (and none is in `avoid`)."""
    stack, avoid = load_stack(stack_file), avoid or set()
    for offset in random.sample(_OFFSETS, len(_OFFSETS)):
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
