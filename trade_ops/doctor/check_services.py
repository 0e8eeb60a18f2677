"""Services: `/livez` and `/health` of each, in the health+json shape and the legacy ones.

The original backend answered `{"status": "healthy" | "unhealthy" | "ok"}`, `checks`
maps of booleans and `error` strings, and served no `/livez`. Whatever the shape, the
service's own answer is the evidence shown: its HTTP status, its body's status, the
checks it says fail and its error text. An HTTP 200 whose body says unhealthy is a
failure, called exactly "HTTP 200 with an unhealthy body".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

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
    problems = [f"{k}: {v}" for k, v in verdict.failing_checks.items()]
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
    elif problems:  # "healthy" while a check says false: believe the check
        verdict.status = "warn"
        verdict.details = [f"says {raw!r} while checks fail", *problems]
    if shape == "legacy":
        verdict.details.append(f'legacy health shape {{"status": "{raw}"}}')
    return verdict


async def check_service(target: Target, http: httpx.AsyncClient, c: Component, r: CheckResult) -> None:
    base = c.base_url
    r.data.update(url=base, port=c.port if not c.url else None)
    live, health = await asyncio.gather(call(http, "GET", base + c.live_path, target.timeout),
                                        call(http, "GET", base + c.health_path, target.timeout))
    r.data["latency_ms"] = round(health.ms, 1)
    if live.response is None and health.response is None:
        r.summary = "unreachable" if live.refused else "not answering"
        r.data["unreachable"] = live.refused
        fix = target.logs_remedy(c.name) if live.timed_out else target.up_remedy(c.name)
        r.fail(f"{base}: {live.error or 'unreachable'}", fix)
        return
    live_code = live.response.status_code if live.response is not None else None
    r.data["livez_status"] = live_code
    if health.response is None:
        r.summary = "health not answering"
        r.fail(f"{c.health_path}: {health.error}", target.logs_remedy(c.name))
        return
    code = health.response.status_code
    r.data["http_status"] = code
    if code == 404:
        r.summary = f"{c.health_path} missing"
        r.fail(f"{c.health_path} answered 404", f"serve GET {c.health_path} in {c.name}, or set "
               f"health_path for {c.name} in the stack file (manual step)")
        return
    if live_code == 404:
        r.details.append(NO_LIVEZ)  # Kubernetes-style: less to look at, not a failure
    elif live.response is None:
        r.warn(f"{c.live_path}: {live.error}", target.logs_remedy(c.name))
    elif live_code != 200:
        r.warn(f"{c.live_path} answered HTTP {live_code} while {c.health_path} answered {code}",
               target.logs_remedy(c.name))
    body = json_of(health.response)
    verdict = judge_health(code, body if body is not None else health.response.text)
    named = evidence.from_checks(verdict.failing_checks, target.stack, own=verdict.own_parts)
    for text in verdict.texts:
        named += evidence.from_text(text, target.stack, c.name)
    named = evidence.unique(named)
    r.data.update(shape=verdict.shape, version=verdict.version, body_status=verdict.raw_status,
                  failing_checks={k: v if isinstance(v, bool | int | float) else str(v)
                                  for k, v in verdict.failing_checks.items()},
                  errors=verdict.texts, named=[n.to_json() for n in named],
                  blocked_by=[n.name for n in named if not n.external])
    if isinstance(body, dict) and "uptime_s" in body:
        r.data["uptime_s"] = body["uptime_s"]
    head = " · ".join(p for p in (verdict.version, f"{health.ms:.0f} ms") if p)
    if verdict.status == "pass":
        r.summary = head
        r.details.extend(verdict.details)
        return
    r.summary = verdict.details[0] if verdict.details else f"health {verdict.status}"
    mark = r.fail if verdict.status == "fail" else r.warn
    for detail in verdict.details or [f"health status {verdict.status}"]:
        if detail.startswith("legacy health shape"):
            r.details.append(detail)
        else:
            mark(detail, target.logs_remedy(c.name))
