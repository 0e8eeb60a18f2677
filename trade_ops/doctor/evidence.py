"""What a service says about its own dependencies: the edges root causes are built from.

Two kinds of words name a dependency, and nothing else does:

    an address    `127.0.0.1:53379`, `questdb:9000`, `http://minio:9000/bucket`,
                  `('127.0.0.1', 4222)` (asyncio's "Connect call failed"): the component
                  doctor was given or found at that address, or else an **external**
                  dependency named by its host and port ("questdb:9000")
    a name        a health field or `checks` key that is a component of the stack, or
                  what other deployments call one (`redis` is valkey, `nats_connected`
                  is nats)

A fragment that is neither (`l2_cache`, `Error 111`, a version "1.2:3") is never a
dependency: it is the service's own problem, quoted as it said it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ALIASES", "TEXT_KEYS", "Named", "address_of", "addresses_in", "canonical", "component_of",
           "from_checks", "from_fields", "from_text", "texts_of", "unique"]

# What other deployments call our components.
ALIASES = {"redis": "valkey", "valkey": "valkey", "nats": "nats", "jetstream": "nats",
           "lake": "lake", "delta": "lake", "deltalake": "lake", "s3": "lake"}
_URL = re.compile(r"\b([a-z][a-z0-9+.-]*)://(?:[^@/\s'\"]+@)?(\[[0-9a-f:]+\]|[\w.-]+)(?::(\d{1,5}))?", re.I)
_HOST_PORT = re.compile(
    r"(?<![\w.:/-])((?:\d{1,3}\.){3}\d{1,3}|[A-Za-z][\w-]*(?:\.[\w-]+)*):(\d{2,5})\b(?![.:]\d)")
_TUPLE = re.compile(r"\(\s*'([\w.:-]+)'\s*,\s*(\d{1,5})\s*[,)]")
# A bare name (no dot) is a host only where the text speaks of connecting to it.
_CONNECTING = re.compile(r"connect|refused|resolve|not known|unreachable|timed? ?out|no route|reset", re.I)
TEXT_KEYS = ("error", "reason", "output", "message", "detail", "details", "description", "last_error")
_LOOPBACK = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "[::1]", "ip6-localhost"}
_DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "valkey": 6379, "nats": 4222,
                  "tls": 4222, "s3": 443}


@dataclass(frozen=True)
class Named:
    name: str  # a stack component, or the external dependency's "host:port"
    external: bool
    evidence: str  # the words that name it, as the service said them
    source: str = "health body"  # which evidence: "health body" | "error text"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "external": self.external, "evidence": self.evidence,
                "source": self.source}


def canonical(host: str, port: int) -> str:
    """One spelling per address: every loopback name is 127.0.0.1."""
    host = host.lower().strip("[]")
    return f"127.0.0.1:{port}" if host in _LOOPBACK or host.startswith("127.") else f"{host}:{port}"


def component_of(word: str, names: Collection[str]) -> str | None:
    """The component a word names (`redis` -> valkey, `nats_connected` -> nats), or None."""
    word = word.lower()
    for candidate in (word, re.split(r"[_\-.:/ ]", word, maxsplit=1)[0]):
        candidate = ALIASES.get(candidate, candidate)
        if candidate in names:
            return candidate
    return None


def from_checks(checks: Mapping[str, object], names: Collection[str],
                own: Collection[str] = ()) -> list[Named]:
    """Each failing entry of a `checks` map whose key names a component, as that dependency.

    `own`: keys the body marks as parts of the service itself (componentType
    "component"); a key that names no component is the service's own problem either way.
    """
    out = []
    for key, value in checks.items():
        component = component_of(key.split(":", 1)[0], names)
        if component is not None:
            out.append(Named(component, False, f"checks.{key} = {value}"))
    return out


def from_fields(fields: Mapping[str, object], names: Collection[str]) -> list[Named]:
    """Failing fields of a body read whole (`nats_connected: false`) that name a component."""
    out = []
    for path, value in fields.items():
        component = component_of(path.rsplit(".", 1)[-1], names)
        if component is not None:
            out.append(Named(component, False, f"{path}: {_spell(value)}"))
    return out


def _spell(value: object) -> str:
    return "false" if value is False else "true" if value is True else str(value)


def addresses_in(text: str) -> list[tuple[str, int, int, int]]:
    """(host, port, start, end) of each address in a text, URL forms first."""
    found: list[tuple[str, int, int, int]] = []
    taken: list[range] = []
    for m in _URL.finditer(text):
        scheme, host = m.group(1).lower(), m.group(2)
        port = int(m.group(3)) if m.group(3) else _DEFAULT_PORTS.get(scheme)
        if port is not None and scheme != "file":
            found.append((host, port, m.start(), m.end()))
        taken.append(range(m.start(), m.end()))
    for pattern in (_TUPLE, _HOST_PORT):
        for m in pattern.finditer(text):
            if any(m.start() in r for r in taken):
                continue
            host, port = m.group(1), int(m.group(2))
            taken.append(range(m.start(), m.end()))
            if 0 < port < 65536:
                found.append((host, port, m.start(), m.end()))
    return found


def from_text(text: str, addresses: Mapping[str, str], names: Collection[str],
              self_name: str | None = None) -> list[Named]:
    """Dependencies named by an address in an error text (the service's own address excluded).

    `addresses`: canonical "host:port" -> the component doctor was given or found there.
    """
    out: list[Named] = []
    connecting = bool(_CONNECTING.search(text))
    for host, port, start, end in addresses_in(text):
        key = canonical(host, port)
        component = addresses.get(key)
        if component is None and "." not in host and not _is_ip(host):
            component = component_of(host, names)  # a compose DNS name: `redis:6379`
            if component is None and not connecting:
                continue  # `status:500`, `line:12`: not an address
        if component == self_name and component is not None:
            continue
        snippet = text.strip() if len(text) <= 240 else text[max(0, start - 100):end + 100]
        out.append(Named(component or key, component is None, snippet, "error text"))
    return out


def _is_ip(host: str) -> bool:
    return bool(re.fullmatch(r"(?:\d{1,3}\.){3}\d{1,3}", host)) or ":" in host


def address_of(url: str) -> str | None:
    """The canonical host:port of a URL (`http://h` is h:80), None when it has no host."""
    try:
        parts = urlsplit(url if "://" in url else f"tcp://{url}")
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    return canonical(parts.hostname, port) if parts.hostname and port else None


def texts_of(body: object) -> list[str]:
    """The `error` / `reason` / `output` texts of a body, at its top level and in its checks."""
    found: list[str] = []

    def visit(node: object, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in TEXT_KEYS and isinstance(value, str | int | float) and str(value).strip():
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
