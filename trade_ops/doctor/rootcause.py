"""Root causes: walk the stack's dependency graph from each failure to what broke first.

A component is down when its own check failed (infrastructure, service, process). A
failure's root causes are the down components it depends on (through the stack's
`depends_on`, plus the dependencies a service's /health names as failing) that depend
on nothing down themselves; with none, the failure is its own root cause. When valkey
is down the report shows one cause, valkey, and the services it blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trade_ops.doctor.model import CheckResult
from trade_ops.stack import Stack

__all__ = ["PRIMARY_GROUPS", "assign"]

PRIMARY_GROUPS = ("infrastructure", "services", "processes")


def assign(results: Sequence[CheckResult], stack: Stack) -> list[dict[str, Any]]:
    """Set cause, blocked_by and remedy on every failing or warning result; return the root causes."""
    known = set(stack.components)
    down = {r.component for r in results
            if r.status == "fail" and r.group in PRIMARY_GROUPS and r.component in known}
    named: dict[str, set[str]] = {}
    for r in results:
        if r.group == "services" and r.component:
            named.setdefault(r.component, set()).update(set(r.data.get("blocked_by", ())) & known)

    def deps(name: str) -> set[str]:
        out = set(stack.closure([name])) - {name}
        for extra in named.get(name, ()):
            if extra != name:
                out |= set(stack.closure([extra]))
        return out - {name}

    memo: dict[str, set[str]] = {}

    def roots(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in memo:
            return memo[name]
        failed = (deps(name) & down) - seen - {name}
        found: set[str] = set()
        for dep in failed:
            found |= roots(dep, seen | {name})
        memo[name] = found or {name}
        return memo[name]

    order = {n: i for i, n in enumerate(stack.start_order())}
    primary = {}
    for r in results:
        if r.status == "fail" and r.group in PRIMARY_GROUPS and r.component:
            current = primary.get(r.component)
            if current is None or (r.group == "processes" and current.group != "processes"):
                primary[r.component] = r
    for r in results:
        if r.status not in ("fail", "warn"):
            continue
        comps = [c for c in (r.component, *r.needs) if c in known]
        found: set[str] = set()
        for c in comps:
            if c in down or deps(c) & down:
                found |= roots(c)
        if r.status == "warn" or not found:
            r.cause = r.component or r.name
            continue
        ranked = sorted(found, key=lambda n: order.get(n, 0))
        r.cause = ranked[0]
        r.blocked_by = [n for n in ranked if n != r.component]
        if r.blocked_by:
            root = primary.get(ranked[0])
            if root is not None and root.remedy:
                r.remedy = f"fix {ranked[0]} first: {root.remedy}"
    return _root_causes(results, stack, primary)


def _root_causes(results: Sequence[CheckResult], stack: Stack,
                 primary: dict[str, CheckResult]) -> list[dict[str, Any]]:
    causes: dict[str, dict[str, Any]] = {}
    examined = {r.component for r in results if r.component}
    for r in results:
        if r.status != "fail" or r.cause is None:
            continue
        entry = causes.setdefault(r.cause, {"name": r.cause, "checks": [], "blocks": []})
        entry["checks"].append(r.name)
        if r.component and r.component != r.cause and r.component not in entry["blocks"]:
            entry["blocks"].append(r.component)
    for name, entry in causes.items():
        root = primary.get(name) or next(r for r in results if r.cause == name and r.status == "fail")
        entry["remedy"] = root.remedy
        entry["reason"] = root.details[0] if root.details else root.summary
        entry["dependents"] = [d for d in stack.dependents(name) if d in examined] \
            if name in stack.components else []
    return sorted(causes.values(), key=lambda e: (-len(e["blocks"]), e["name"]))
