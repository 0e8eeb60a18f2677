"""Services: `/livez` and `/health` of each, in the health+json shape and the legacy ones.

The original backend answered `{"status": "healthy" | "unhealthy" | "ok"}`, `checks`
maps of booleans and `error` strings, and served no `/livez`. Whatever the shape, the
service's own answer is the evidence shown: its HTTP status, its body's status, the
checks it says fail and its error text. An HTTP 200 whose body says unhealthy is a
failure, called exactly "HTTP 200 with an unhealthy body".
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.contract import OWN_DESCRIPTION
from trade_ops import identity, processes
from trade_ops.doctor import evidence
from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.stack import Component

__all__ = ["NO_LIVEZ", "UNHEALTHY_200", "Verdict", "check_service", "judge_health"]

UNHEALTHY_200 = "HTTP 200 with an unhealthy body"
NO_LIVEZ = "no /livez (answered 404): /health serves as liveness"
_PASS = {"pass", "ok", "healthy", "up", "green", "true"}
_WARN = {"warn", "degraded", "yellow"}
_FAIL = {"fail", "unhealthy", "down", "error", "red", "critical", "false"}


@dataclass
class Verdict:
    status: str  # pass | warn | fail
    shape: str  # health+json | legacy | none
    details: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)  # keys of failing checks ("valkey", "redis")
    failing_checks: dict[str, Any] = field(default_factory=dict)  # key -> what the body says
    # Failing keys whose entry says componentType "component": a part of the service
    # itself (its consumer, a background task), not a dependency it names.
    own_parts: set[str] = field(default_factory=set)
    texts: list[str] = field(default_factory=list)  # the body's error / reason / output texts
    # Fields of the body read whole that say something is down ("nats_connected" -> False),
    # by their path in the body; and what it says of itself that is no fault ("mode: SHADOW").
    fields: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    raw_status: Any = None
    version: str | None = None


def _word(value: Any) -> str:
    return str(value).lower()


def _failing_checks(checks: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The failing checks (key -> what the body says) and which of them are own parts."""
    out: dict[str, Any] = {}
    own: set[str] = set()
    for key, entries in checks.items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, dict):
                if _word(entry.get("status", "pass")) not in _PASS:
                    out[key] = entry.get("output") or entry.get("error") or entry.get("status")
                    if _word(entry.get("componentType")) == "component":
                        own.add(key)
            elif entry is False or _word(entry) in _FAIL:
                out[key] = entry
    return out, own


# A boolean field is about health when a word of its key says so (`nats_connected`,
# `isHealthy`, `redis_ok`) or its key names a component (`redis: false`).
_UP_WORDS = {"connected", "healthy", "ok", "up", "alive", "ready", "available", "reachable", "running",
             "consuming", "subscribed", "online", "live", "writable"}
_DOWN_WORDS = {"disconnected", "degraded", "stale", "failed", "failing", "down", "offline", "halted",
               "stalled", "unhealthy"}
# Maps whose every entry is a component's health (`components: {"db": false}`); `details`
# is read too, but only its fields whose names speak of health.
_CONTAINERS = ("checks", "components", "dependencies", "services", "connections")
_HEALTH_WORDS = _UP_WORDS | {"status", "state", "health", "connection"}
_NOTE_KEYS = {"mode", "state", "role", "environment", "env", "trading_mode"}
_SKIP_KEYS = {"status", "checks", "version", "serviceId", "description", "time", "timestamp", "uptime_s",
              "releaseId", "links", "notes"}


def _words(key: str) -> set[str]:
    return {w.lower() for w in re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", key) if w}


def _field_down(key: str, value: Any, inside: bool) -> bool:
    words = _words(key)
    if isinstance(value, bool):
        if value is False:
            return inside or bool(words & _UP_WORDS) or key.lower() in evidence.ALIASES
        return bool(words & _DOWN_WORDS)
    if isinstance(value, str) and (inside or words & _HEALTH_WORDS or key.lower() in evidence.ALIASES):
        word = value.lower().strip()  # `nats: "disconnected"`, not `log_level: "error"`
        return word in _FAIL or word in {"disconnected", "not connected", "unavailable", "closed",
                                         "unreachable"}
    return False


def read_fields(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The body read whole: (fields that say something is down, by path; notes such as its mode).

    Top-level fields and nested `components` / `details` / `dependencies` (not `checks`,
    judged entry by entry, and not the text fields, which are evidence of their own).
    """
    down: dict[str, Any] = {}
    notes: list[str] = []

    def visit(node: dict[str, Any], prefix: str, inside: bool, depth: int) -> None:
        for key, value in node.items():
            if not isinstance(key, str) or (depth == 0 and key in _SKIP_KEYS) or \
                    (key in evidence.TEXT_KEYS and not isinstance(value, dict)):
                continue
            path = f"{prefix}{key}"
            if isinstance(value, dict) and depth < 3:
                if isinstance(value.get("status"), str) and _word(value["status"]) in _FAIL:
                    down[path] = value["status"]
                elif isinstance(value.get("healthy"), bool) and not value["healthy"]:
                    down[f"{path}.healthy"] = False
                else:
                    visit(value, f"{path}.", inside or key in _CONTAINERS, depth + 1)
            elif key == "status":
                if _word(value) in _FAIL:
                    down[path] = value
            elif _field_down(key, value, inside):
                down[path] = value
            elif depth == 0 and key.lower() in _NOTE_KEYS and isinstance(value, str | int | float):
                notes.append(f"{key}: {value}")

    visit(body, "", False, 0)
    return down, notes


def judge_health(code: int, body: Any) -> Verdict:
    """What a /health answer says, whatever shape it has."""
    raw = body.get("status") if isinstance(body, dict) else None
    word = _word(raw) if raw is not None else None
    if word is None:
        if code == 200:
            return Verdict("warn", "none", [f"HTTP 200 without a health status: {str(body)[:80]}"])
        return Verdict("fail", "none", [f"unhealthy: HTTP {code} {str(body)[:160]}"], raw_status=None,
                       texts=evidence.texts_of(body))
    assert isinstance(body, dict)
    shape = "health+json" if word in {"pass", "warn", "fail"} else "legacy"
    verdict = Verdict("pass", shape, version=body.get("version"), raw_status=raw,
                      texts=evidence.texts_of(body))
    checks = body.get("checks") if isinstance(body.get("checks"), dict) else body.get("dependencies")
    if isinstance(checks, dict):
        verdict.failing_checks, verdict.own_parts = _failing_checks(checks)
        verdict.failing = [k.split(":", 1)[0] for k in verdict.failing_checks]
    verdict.fields, verdict.notes = read_fields(body)
    problems = [f"{k}: {v}" for k, v in verdict.failing_checks.items()]
    problems += [f"{k}: {_spell(v)}" for k, v in verdict.fields.items()]
    reason = "; ".join(t for t in verdict.texts if t not in problems)
    if word in _FAIL or (code >= 400 and word in _PASS | _WARN):
        verdict.status = "fail"
        head = UNHEALTHY_200 if code == 200 else f"unhealthy: HTTP {code} {{\"status\": \"{raw}\"}}"
        verdict.details = [head + (f" · {reason[:240]}" if reason else ""), *problems]
    elif word in _WARN:
        verdict.status = "warn"
        verdict.details = [f"degraded: {{\"status\": \"{raw}\"}}", *problems]
    elif word not in _PASS:
        verdict.status = "warn"
        verdict.details = [f"unknown health status {raw!r}", *problems]
    elif problems:  # "healthy" while a check or a field says otherwise: believe the field
        verdict.status = "warn"
        verdict.details = [f"says {raw!r} while {problems[0]}", *problems]
    verdict.details += [n for n in verdict.notes if n not in verdict.details]
    if shape == "legacy":
        verdict.details.append(f'legacy health shape {{"status": "{raw}"}}')
    return verdict


def _spell(value: Any) -> str:
    return "false" if value is False else "true" if value is True else str(value)


def says_own(body: Any) -> bool:
    """A trade-ops service says so in its health body (see target.py)."""
    return isinstance(body, dict) and body.get("description") == OWN_DESCRIPTION


async def check_service(target: Target, http: httpx.AsyncClient, c: Component, r: CheckResult) -> None:
    own = False
    try:
        own = await _check_service(target, http, c, r)
        if not own and r.data.get("shape") in (None, "none") and r.data.get("livez_status") is not None:
            own = await _openapi_says_own(target, http, c)  # its /health says nothing readable
    finally:
        target.identify(c.name, own)
    if not target.is_own_now(c.name):
        r.data["foreign"] = True


async def _openapi_says_own(target: Target, http: httpx.AsyncClient, c: Component) -> bool:
    answer = await call(http, "GET", c.base_url + "/openapi.json", target.timeout)
    doc = json_of(answer.response)
    info = doc.get("info") if isinstance(doc, dict) else None
    return isinstance(info, dict) and info.get("description") == OWN_DESCRIPTION


def _impostor(target: Target, c: Component, r: CheckResult, live: Any) -> bool:
    """On a stack trade-ops started, a service whose /livez does not answer the instance id
    trade-ops gave it (identity.py) is an impostor on its port: failed, with the port's
    holder, and nothing of doctor's (no token, no order) goes to it."""
    ours = target.started(c.name) and not c.url
    want = identity.expected(target.run_dir.path, c.name) if ours else None
    got = live.get("instance") if isinstance(live, dict) else None
    if want is None or got == want or (got is None and not identity.own_service(c.command)):
        return False
    holder = processes.port_holder(c.port) if c.port else None
    r.summary = "impostor"
    r.data["impostor"] = holder or "unknown"
    said = f"instance {got}" if got else "no instance id"
    r.fail(f"{c.base_url} is not the process trade-ops started (its /livez answered {said}); "
           f"port {c.port} is held by {holder or 'a process the OS does not show'}",
           f"stop {holder or 'the program'} on port {c.port}, then `trade-ops restart {c.name}` "
           "(manual step)")
    return True


async def _check_service(target: Target, http: httpx.AsyncClient, c: Component, r: CheckResult) -> bool:
    """The service's check; whether its body says it is trade-ops' own."""
    base = c.base_url
    r.data.update(url=base, port=c.port if not c.url else None)
    live, health = await asyncio.gather(call(http, "GET", base + c.live_path, target.timeout),
                                        call(http, "GET", base + c.health_path, target.timeout))
    r.data["latency_ms"] = round(health.ms, 1)
    if live.response is None and health.response is None:
        r.summary = "unreachable" if live.refused else "not answering"
        r.data["unreachable"] = live.refused
        fix = target.logs_remedy(c.name, answers=False) if live.timed_out else target.up_remedy(c.name)
        r.fail(f"{base}: {live.error or 'unreachable'}", fix)
        return False
    live_code = live.response.status_code if live.response is not None else None
    r.data["livez_status"] = live_code
    if _impostor(target, c, r, json_of(live.response) if live.response is not None else None):
        return False
    if health.response is None:
        r.summary = "health not answering"
        r.fail(f"{c.health_path}: {health.error}", target.logs_remedy(c.name, answers=False))
        return False
    code = health.response.status_code
    r.data["http_status"] = code
    if code == 404:
        r.summary = f"{c.health_path} missing"
        r.fail(f"{c.health_path} answered 404", f"serve GET {c.health_path} in {c.name}, or set "
               f"health_path for {c.name} in the stack file (manual step)")
        return False
    if live_code == 404:
        r.details.append(NO_LIVEZ)  # Kubernetes-style: less to look at, not a failure
    elif live.response is None:
        r.warn(f"{c.live_path}: {live.error}", target.logs_remedy(c.name))
    elif live_code != 200:
        r.warn(f"{c.live_path} answered HTTP {live_code} while {c.health_path} answered {code}",
               target.logs_remedy(c.name))
    body = json_of(health.response)
    verdict = judge_health(code, body if body is not None else health.response.text)
    names = target.stack.components.keys()
    named = evidence.from_checks(verdict.failing_checks, names, own=verdict.own_parts)
    named += evidence.from_fields(verdict.fields, names)
    directory = target.directory()
    for text in verdict.texts:
        named += evidence.from_text(text, directory, names, c.name)
    named = [n for n in evidence.unique(named) if n.name != c.name]
    r.data.update(shape=verdict.shape, version=verdict.version, body_status=verdict.raw_status,
                  failing_checks={k: v if isinstance(v, bool | int | float) else str(v)
                                  for k, v in verdict.failing_checks.items()},
                  errors=verdict.texts, named=[n.to_json() for n in named], notes=verdict.notes,
                  fields={k: _spell(v) for k, v in verdict.fields.items()},
                  blocked_by=[n.name for n in named if not n.external])
    if isinstance(body, dict) and "uptime_s" in body:
        r.data["uptime_s"] = body["uptime_s"]
    head = " · ".join(p for p in (verdict.version, f"{health.ms:.0f} ms") if p)
    if verdict.status == "pass":
        r.summary = head
        r.details.extend(verdict.details)
        return says_own(body)
    r.summary = verdict.details[0] if verdict.details else f"health {verdict.status}"
    mark = r.fail if verdict.status == "fail" else r.warn
    for detail in verdict.details or [f"health status {verdict.status}"]:
        if detail.startswith("legacy health shape"):
            r.details.append(detail)
        else:
            mark(detail, target.logs_remedy(c.name))
    return says_own(body)
