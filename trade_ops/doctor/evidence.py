"""What a service says about its own dependencies: the edges root causes are built from.

A health body names what fails (`checks` keys such as `redis`, `valkey:responseTime`,
`questdb`), and error texts name hosts (`questdb:9000`, `127.0.0.1:6379`). Each becomes
a dependency: a component of the stack when the name or port is one of its own, an
**external** one (QuestDB, ClickHouse, an S3 endpoint) otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from trade_ops.stack import Stack

__all__ = ["ALIASES", "Named", "from_checks", "from_text", "texts_of"]

# What other deployments call our components.
ALIASES = {"redis": "valkey", "valkey": "valkey", "cache": "valkey", "nats": "nats", "jetstream": "nats",
           "lake": "lake", "delta": "lake", "deltalake": "lake"}
_HOST_PORT = re.compile(r"(?<![\w.-])((?:\d{1,3}\.){3}\d{1,3}|[A-Za-z][\w-]*(?:\.[\w-]+)*):(\d{2,5})\b")
_TEXT_KEYS = ("error", "reason", "output", "message", "detail", "details", "description")
_IGNORED_HOSTS = {"http", "https", "redis", "nats", "tcp", "s3", "file"}


@dataclass(frozen=True)
class Named:
    name: str  # a stack component, or the external dependency's name ("questdb")
    external: bool
    evidence: str  # the words that name it, as the service said them

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "external": self.external, "evidence": self.evidence}


def _component_of(word: str, stack: Stack) -> str | None:
    word = word.lower()
    word = ALIASES.get(word, word)
    return word if word in stack.components else None


def from_checks(checks: dict[str, object], stack: Stack, own: Collection[str] = ()) -> list[Named]:
    """Each failing entry of a `checks` map, as the dependency it names.

    `own`: keys the body marks as parts of the service itself (componentType
    "component": its consumer, a task); one of them names no dependency unless its name
    is a component of the stack (the OMS's `risk` check is about risk).
    """
    out = []
    for key, value in checks.items():
        base = key.split(":", 1)[0]
        component = _component_of(base, stack)
        if component is None and key in own:
            continue
        out.append(Named(component or base.lower(), component is None, f"checks.{key} = {value}"))
    return out


def _port_owner(port: int, stack: Stack) -> str | None:
    return next((c.name for c in stack.components.values() if port in (c.port, c.monitor_port)), None)


def from_text(text: str, stack: Stack, self_name: str | None = None) -> list[Named]:
    """Dependencies named by host:port in an error text (the service's own name excluded)."""
    out: list[Named] = []
    for match in _HOST_PORT.finditer(text):
        host, port = match.group(1), int(match.group(2))
        if host.lower() in _IGNORED_HOSTS:
            continue
        local = host in ("127.0.0.1", "localhost", "0.0.0.0")
        component = _component_of(host.split(".")[0], stack) or (_port_owner(port, stack) if local else None)
        if component == self_name:
            continue
        name = component or host.split(".")[0].lower()
        snippet = text.strip() if len(text) <= 240 else text[max(0, match.start() - 100):match.end() + 100]
        out.append(Named(name, component is None, snippet))
    return out


def texts_of(body: object) -> list[str]:
    """The `error` / `reason` / `output` texts of a body, at its top level and in its checks."""
    found: list[str] = []

    def visit(node: object, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _TEXT_KEYS and isinstance(value, str | int | float) and str(value).strip():
                    found.append(f"{key}: {value}")
                elif isinstance(value, dict | list):
                    visit(value, depth + 1)
        elif isinstance(node, list):
            for item in node:
                visit(item, depth + 1)

    visit(body, 0)
    return found


def unique(named: Iterable[Named]) -> list[Named]:
    seen: dict[str, Named] = {}
    for n in named:
        seen.setdefault(n.name, n)
    return list(seen.values())
