"""Services: `/livez` and `/health` of each, in the health+json shape and the legacy ones.

The original backend answered `{"status": "healthy" | "unhealthy" | "ok"}`; an HTTP 200
whose body says unhealthy is a failure, called exactly "HTTP 200 with an unhealthy body".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.stack import Component

__all__ = ["UNHEALTHY_200", "Verdict", "check_service", "judge_health"]

UNHEALTHY_200 = "HTTP 200 with an unhealthy body"
_PASS = {"pass", "ok", "healthy", "up", "green"}
_WARN = {"warn", "degraded", "yellow"}
_FAIL = {"fail", "unhealthy", "down", "error", "red", "critical"}


@dataclass
class Verdict:
    status: str  # pass | warn | fail
    shape: str  # health+json | legacy | none
    details: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)  # components named by failing checks
    version: str | None = None


def judge_health(code: int, body: Any) -> Verdict:
    """What a /health answer says, whatever shape it has."""
    raw = body.get("status") if isinstance(body, dict) else None
    word = str(raw).lower() if raw is not None else None
    if word is None:
        if code == 200:
            return Verdict("warn", "none", [f"HTTP 200 without a health status: {str(body)[:80]}"])
        return Verdict("fail", "none", [f"HTTP {code}: {str(body)[:120]}"])
    shape = "health+json" if word in {"pass", "warn", "fail"} else "legacy"
    verdict = Verdict("pass", shape, version=body.get("version"))
    if shape == "legacy":
        verdict.details.append(f'legacy health shape {{"status": "{raw}"}}')
    if isinstance(body.get("checks"), dict):
        for key, entries in body["checks"].items():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict) and str(entry.get("status", "pass")).lower() not in _PASS:
                    output = entry.get("output") or entry.get("status")
                    verdict.details.append(f"{key}: {output}")
                    verdict.failing.append(key.split(":", 1)[0])
    elif isinstance(body.get("checks") or body.get("dependencies"), dict):
        for key, value in (body.get("checks") or body.get("dependencies")).items():
            if str(value).lower() in _FAIL:
                verdict.details.append(f"{key}: {value}")
                verdict.failing.append(key)
    if word in _FAIL:
        verdict.status = "fail"
        if code == 200:
            verdict.details.insert(0, UNHEALTHY_200)
        elif body.get("output"):
            verdict.details.insert(0, str(body["output"])[:200])
    elif word in _WARN:
        verdict.status = "warn"
    elif word not in _PASS:
        verdict.status = "warn"
        verdict.details.append(f"unknown health status {raw!r}")
    elif code >= 400:
        verdict.status = "fail"
        verdict.details.append(f"HTTP {code} with a passing body")
    return verdict


async def check_service(target: Target, http: httpx.AsyncClient, c: Component, r: CheckResult) -> None:
    base = c.base_url
    r.data.update(url=base, port=c.port)
    live, health = await asyncio.gather(call(http, "GET", base + c.live_path, target.timeout),
                                        call(http, "GET", base + c.health_path, target.timeout))
    r.data["latency_ms"] = round(health.ms, 1)
    if live.response is None and health.response is None:
        r.summary = "unreachable" if live.refused else "not answering"
        r.data["unreachable"] = live.refused
        fix = target.logs_remedy(c.name) if live.timed_out else target.up_remedy(c.name)
        r.fail(live.error or "unreachable", fix)
        return
    if live.response is None:
        r.warn(f"{c.live_path}: {live.error}")
    elif live.response.status_code != 200:
        r.warn(f"{c.live_path} answered HTTP {live.response.status_code}",
               f"serve GET {c.live_path} (set live_path for {c.name} in the stack file)")
    if health.response is None:
        r.summary = "health not answering"
        r.fail(f"{c.health_path}: {health.error}", target.logs_remedy(c.name))
        return
    code = health.response.status_code
    if code == 404:
        r.summary = f"{c.health_path} missing"
        r.fail(f"{c.health_path} answered 404", f"serve GET {c.health_path} or set health_path for "
               f"{c.name} in the stack file")
        return
    body = json_of(health.response)
    verdict = judge_health(code, body if body is not None else health.response.text)
    r.data.update(http_status=code, shape=verdict.shape, version=verdict.version)
    if isinstance(body, dict) and "uptime_s" in body:
        r.data["uptime_s"] = body["uptime_s"]
    r.data["blocked_by"] = verdict.failing
    head = " · ".join(p for p in (verdict.version, f"{health.ms:.0f} ms") if p)
    r.summary = head if verdict.status == "pass" else f"{verdict.details[0] if verdict.details else ''}"
    if verdict.status == "pass":
        r.details.extend(verdict.details)
        return
    mark = r.fail if verdict.status == "fail" else r.warn
    for detail in verdict.details or [f"health status {verdict.status}"]:
        mark(detail, target.logs_remedy(c.name))
