"""What doctor examines: the stack, which of its components, where they answer.

With a run directory holding state.json, the components trade-ops started there (and
what they depend on); without one, every enabled component of the stack file, at the URLs the
file (or `--url SVC=URL`) gives: doctor can examine a deployment it did not start.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trade_ops.errors import UsageError
from trade_ops.rundir import RunDir
from trade_ops.stack import Component, Stack

__all__ = ["Process", "Target", "build_target", "parse_urls", "processes_of"]


@dataclass
class Process:
    """One supervised process, as the supervisor (or state.json) reports it."""

    name: str
    kind: str
    pid: int
    port: int | None
    state: str  # running | dead | suspended
    alive: bool
    restarts: int
    log: Path
    started_at: float = 0.0


@dataclass
class Target:
    stack: Stack
    run_dir: RunDir
    services: list[Component]
    infra: list[Component]
    processes: dict[str, Process] = field(default_factory=dict)
    compose: Path | None = None
    timeout: float = 1.0
    account: str = "doctor"

    @property
    def names(self) -> set[str]:
        return {c.name for c in (*self.services, *self.infra)}

    def has(self, *names: str) -> bool:
        return all(n in self.names for n in names)

    def up_remedy(self, name: str) -> str:
        component = self.stack.components.get(name)
        if component is not None and component.url:
            return f"check that {name} runs at {component.base_url} (the `url` of {name} in the stack file)"
        flag = "" if self.run_dir.path == RunDir().path else f" --run-dir {self.run_dir.path}"
        return f"trade-ops up --only {name}{flag}"

    def logs_remedy(self, name: str) -> str:
        flag = "" if self.run_dir.path == RunDir().path else f" --run-dir {self.run_dir.path}"
        return f"trade-ops logs {name}{flag}"

    def describe(self) -> dict[str, Any]:
        return {"stack": self.stack.source, "offset": self.stack.offset,
                "run_dir": str(self.run_dir.path), "supervised": bool(self.processes),
                "urls": {c.name: c.base_url for c in self.services}}


def parse_urls(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise UsageError(f"--url {pair!r}: expected SERVICE=http://host:port")
        out[name.strip()] = url.strip().rstrip("/")
    return out


def processes_of(run_dir: RunDir) -> dict[str, Process]:
    """The recorded processes and whether each still runs (readiness is doctor's own job)."""
    if not run_dir.has_state():
        return {}
    from trade_ops.processes import find_ours

    state = run_dir.load_state()
    out: dict[str, Process] = {}
    for name, rec in state.processes.items():
        proc = find_ours(rec.pid, rec.started_at)
        state = "dead" if proc is None else "running"
        with contextlib.suppress(Exception):
            if proc is not None and proc.status() == "stopped":
                state = "suspended"  # SIGSTOP: alive, holds its port, answers nothing
        out[name] = Process(name, rec.kind, rec.pid, rec.port, state, proc is not None,
                            rec.restarts, Path(rec.log), rec.started_at)
    return out


def build_target(run_dir: RunDir, stack_file: Path | str | None = None, urls: dict[str, str] | None = None,
                 timeout: float = 1.0, compose: Path | None = None) -> Target:
    stack = run_dir.stack(stack_file)
    urls = urls or {}
    for name in urls:
        if name not in stack.components or not stack.components[name].is_service:
            known = ", ".join(c.name for c in stack.services)
            raise UsageError(f"--url {name}=...: no service {name!r} in the stack; known: {known}")
    if urls:
        stack = replace(stack, components={
            n: replace(c, url=urls[n]) if n in urls else c for n, c in stack.components.items()})
    processes = processes_of(run_dir)
    if processes:
        chosen = set(processes) | set(urls) | {c.name for c in stack.services if c.url}
        chosen = {n for n in chosen if n in stack.components}
        wanted = set(stack.closure(chosen))
    else:
        enabled = [c.name for c in stack.services if c.enabled or c.name in urls]
        wanted = set(stack.closure(enabled)) | {c.name for c in stack.infra}
    services = [c for c in stack.services if c.name in wanted]
    infra = [c for c in stack.infra if c.name in wanted]
    if compose is None:
        default = Path("compose.yaml")
        compose = default if default.is_file() else None
    return Target(stack=stack, run_dir=run_dir, services=services, infra=infra, processes=processes,
                  compose=compose, timeout=timeout)
