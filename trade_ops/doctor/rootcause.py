"""Root causes: from each failure to what broke first, led by the evidence.

The order of trust:
1. A component whose own process is dead or suspended, or that refuses connections or
   does not answer at all, is its own root cause, whatever it depends on: with exeq and
   live-gateway both killed, both are causes.
2. What a failing service says: the dependencies its health `checks` name as failing and
   the hosts its error text names (see evidence.py). A named component that is down
   leads on to that component's own causes; one that doctor did not examine, or an
   external dependency (QuestDB, S3), is a root cause itself, with the words that name it.
3. Only a failure that says nothing about why falls back on the stack's `depends_on`
   graph: a prior, not the verdict.
Several independent failures are several root causes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trade_ops.doctor.model import CheckResult
from trade_ops.stack import Stack

__all__ = ["PRIMARY_GROUPS", "assign"]

PRIMARY_GROUPS = ("infrastructure", "services", "processes")


class _Graph:
    def __init__(self, results: Sequence[CheckResult], stack: Stack) -> None:
        self.stack = stack
        self.known = set(stack.components)
        self.examined = {r.component for r in results if r.component and r.group in PRIMARY_GROUPS}
        self.primary: dict[str, CheckResult] = {}
        for r in results:
            if r.status == "fail" and r.group in PRIMARY_GROUPS and r.component:
                current = self.primary.get(r.component)
                if current is None or (r.group == "processes" and current.group != "processes"):
                    self.primary[r.component] = r
        self.down = set(self.primary)
        # Its own fault, whatever else is down: a dead, suspended, refusing or silent component.
        self.own = {c for c, r in self.primary.items()
                    if r.group in ("processes", "infrastructure") or "unreachable" in r.data}
        self.named: dict[str, list[dict[str, Any]]] = {
            r.component: list(r.data.get("named") or []) for r in results
            if r.group == "services" and r.component and r.status == "fail"}
        self.external: dict[str, dict[str, Any]] = {}  # cause name -> {kind, evidence, by}
        self.memo: dict[str, set[str]] = {}

    def deps(self, name: str) -> set[str]:
        return set(self.stack.closure([name])) - {name} if name in self.known else set()

    def _note(self, name: str, kind: str, by: str, words: str) -> None:
        entry = self.external.setdefault(name, {"kind": kind, "evidence": [], "by": []})
        if by not in entry["by"]:
            entry["by"].append(by)
            entry["evidence"].append(f"{by}: {words}")

    def causes(self, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in self.memo:
            return self.memo[name]
        if name in self.own:
            return {name}
        found: set[str] = set()
        named = self.named.get(name, [])
        for n in named:
            dep = str(n["name"])
            if dep in seen or dep == name:
                continue
            if n.get("external"):
                self._note(dep, "external", name, str(n["evidence"]))
                found.add(dep)
            elif dep in self.down:
                found |= self.causes(dep, seen | {name})
            elif dep not in self.examined:
                self._note(dep, "not examined", name, str(n["evidence"]))
                found.add(dep)
        if not named:  # no word from the service: the stack graph, as a prior
            for dep in (self.deps(name) & self.down) - seen - {name}:
                found |= self.causes(dep, seen | {name})
        self.memo[name] = found or {name}
        return self.memo[name]


def _external_remedy(name: str, entry: dict[str, Any]) -> str:
    by = ", ".join(entry["by"])
    if entry["kind"] == "external":
        return (f"make {name} reachable from {by}: check that it runs and that its host name resolves "
                f"there (manual step: {name} is not part of the stack)")
    return (f"check the {name} that {by} uses (manual step: doctor was not given its address; "
            f"add it with --{name} URL to examine it)")


def assign(results: Sequence[CheckResult], stack: Stack) -> list[dict[str, Any]]:
    """Set cause, blocked_by and remedy on every failing or warning result; return the root causes."""
    g = _Graph(results, stack)
    order = {n: i for i, n in enumerate(stack.start_order())}
    for r in results:
        if r.status not in ("fail", "warn"):
            continue
        if r.status == "warn":
            r.cause = r.component or r.name
            continue
        found: set[str] = set()
        if r.group in PRIMARY_GROUPS and r.component in g.down:
            found = g.causes(r.component)
        else:
            for c in (r.component, *r.needs):
                if c in g.down or (c in g.known and g.deps(c) & g.down):
                    found |= g.causes(c) if c in g.down else \
                        set().union(*(g.causes(d) for d in g.deps(c) & g.down))
        if not found:
            r.cause = r.component or r.name
            continue
        ranked = sorted(found, key=lambda n: (order.get(n, -1), n))
        r.cause = r.component if r.component in found else ranked[0]
        r.blocked_by = [n for n in ranked if n != r.component]
        if r.blocked_by and r.component not in found:
            first = ranked[0]
            root = g.primary.get(first)
            fix = root.remedy if root is not None else \
                _external_remedy(first, g.external[first]) if first in g.external else None
            if fix:
                r.remedy = f"fix {first} first: {fix}"
    return _root_causes(results, stack, g)


def _root_causes(results: Sequence[CheckResult], stack: Stack, g: _Graph) -> list[dict[str, Any]]:
    causes: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.status != "fail":
            continue
        names = dict.fromkeys([*([r.cause] if r.cause else []), *r.blocked_by])
        for name in names:
            entry = causes.setdefault(name, {"name": name, "checks": [], "blocks": []})
            entry["checks"].append(r.name)
            if r.component and r.component != name and r.component not in entry["blocks"]:
                entry["blocks"].append(r.component)
    examined = {r.component for r in results if r.component}
    for name, entry in causes.items():
        if name in g.external:
            ext = g.external[name]
            entry.update(kind=ext["kind"], evidence=ext["evidence"], remedy=_external_remedy(name, ext),
                         reason=f"named by {', '.join(ext['by'])}: {ext['evidence'][0]}")
        else:
            root = g.primary.get(name) or next(
                (r for r in results if r.status == "fail" and (r.cause == name or r.component == name)),
                None)
            entry.update(kind="component", remedy=root.remedy if root else None,
                         reason=(root.details[0] if root and root.details else root.summary if root else ""),
                         evidence=list(root.problems[:4]) if root else [])
        entry["dependents"] = [d for d in stack.dependents(name) if d in examined] \
            if name in stack.components else []
    return sorted(causes.values(), key=lambda e: (-len(e["blocks"]), e["name"]))
