"""Root causes: from each failure to what broke first, led by the evidence.

The order of trust:
1. A component whose own process is dead or suspended, or that refuses connections or
   does not answer at all, is its own root cause, whatever it depends on: with exeq and
   live-gateway both killed, both are causes.
2. What a failing service says: the dependencies its health `checks` name as failing and
   the hosts its error text names (see evidence.py). A named component that is down
   leads on to that component's own causes; one that doctor did not examine, or an
   external dependency (QuestDB, S3), is a root cause itself, with the words that name it.
3. Only a failure of one of trade-ops' own services that says nothing about why falls
   back on the stack's `depends_on` graph: a prior, not the verdict. A foreign service
   (one trade-ops did not start and that does not say it is trade-ops') has no edges but
   the ones its evidence names: trade-ops' graph is not its graph.
Several independent failures are several root causes. Each result says which evidence
its cause rests on (`rests_on`), and so does each root cause.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from trade_ops.doctor.model import CheckResult, RootCause
from trade_ops.stack import Stack

__all__ = ["PRIMARY_GROUPS", "assign"]

PRIMARY_GROUPS = ("infrastructure", "services", "processes")


GRAPH = "trade-ops' dependency graph"


@dataclass
class _Named:
    """A cause only the evidence names: an external dependency, or one doctor did not examine."""
    kind: str  # external | not examined
    evidence: list[str] = field(default_factory=list)  # "<who named it>: <its words>"
    by: list[str] = field(default_factory=list)  # the services that named it


class _Graph:
    def __init__(self, results: Sequence[CheckResult], stack: Stack, own: Collection[str] | None) -> None:
        self.stack = stack
        self.known = set(stack.components)
        # Whose depends_on edges hold: trade-ops' own services (all, for the unit tests' stacks).
        self.own = self.known if own is None else set(own)
        self.examined = {r.component for r in results if r.component and r.group in PRIMARY_GROUPS}
        self.primary: dict[str, CheckResult] = {}
        for r in results:
            if r.status == "fail" and r.group in PRIMARY_GROUPS and r.component:
                current = self.primary.get(r.component)
                if current is None or (r.group == "processes" and current.group != "processes"):
                    self.primary[r.component] = r
        self.down = set(self.primary)
        # Its own fault, whatever else is down: a dead, suspended, refusing or silent component.
        self.itself = {c for c, r in self.primary.items()
                       if r.group in ("processes", "infrastructure") or "unreachable" in r.data}
        self.named: dict[str, list[dict[str, Any]]] = {
            r.component: list(r.data.get("named") or []) for r in results
            if r.group == "services" and r.component and r.status == "fail"}
        self.external: dict[str, _Named] = {}  # cause name -> who named it, with which words
        self.memo: dict[str, set[str]] = {}
        self.via: dict[str, set[str]] = {}  # component -> the evidence its causes were found by

    def deps(self, name: str) -> set[str]:
        """trade-ops' depends_on edges: for its own services only."""
        return set(self.stack.closure([name])) - {name} if name in self.known and name in self.own else set()

    def _note(self, name: str, kind: str, by: str, words: str) -> None:
        entry = self.external.setdefault(name, _Named(kind))
        if by not in entry.by:
            entry.by.append(by)
            entry.evidence.append(f"{by}: {words}")

    def causes(self, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in self.memo:
            return self.memo[name]
        via = self.via.setdefault(name, set())
        if name in self.itself:
            return {name}
        found: set[str] = set()
        named = self.named.get(name, [])
        for n in named:
            dep = str(n["name"])
            if dep in seen or dep == name:
                continue
            source = str(n.get("source") or "health body")
            if n.get("external"):
                self._note(dep, "external", name, str(n["evidence"]))
                found.add(dep)
                via.add(source)
            elif dep in self.down:
                found |= self.causes(dep, seen | {name})
                via.add(source)
            elif dep not in self.examined:
                self._note(dep, "not examined", name, str(n["evidence"]))
                found.add(dep)
                via.add(source)
        if not named:  # no word from the service: trade-ops' graph, as a prior for its own
            for dep in (self.deps(name) & self.down) - seen - {name}:
                found |= self.causes(dep, seen | {name})
                via.add(GRAPH)
        self.memo[name] = found or {name}
        return self.memo[name]


def _external_remedy(name: str, entry: _Named) -> str:
    by = ", ".join(entry.by)
    if entry.kind == "external":
        return (f"manual step: make {name} reachable from {by} (check that it runs and that its host "
                "name resolves there; it is not part of the stack doctor examined)")
    flag = {"valkey": "--valkey redis://HOST:PORT", "nats": "--nats nats://HOST:PORT",
            "lake": "--lake URI"}.get(name, f"--url {name}=http://HOST:PORT")
    return (f"manual step: check the {name} that {by} uses (doctor was not given its address; "
            f"add {flag} to examine it)")


def assign(results: Sequence[CheckResult], stack: Stack,
           own: Collection[str] | None = None) -> list[RootCause]:
    """Set cause, blocked_by and remedy on every failing or warning result; return the root causes.

    `own`: the components trade-ops' own model applies to (None: all of them)."""
    g = _Graph(results, stack, own)
    order = {n: i for i, n in enumerate(stack.start_order())}
    for r in results:
        if r.status not in ("fail", "warn"):
            continue
        if r.status == "warn":
            r.cause = r.component or r.name
            r.rest_on(*([] if r.rests_on else ["its own answer"]))
            continue
        found: set[str] = set()
        if r.group in PRIMARY_GROUPS and r.component in g.down:
            found = g.causes(r.component)
            r.rest_on(*sorted(g.via.get(r.component, ())))
        else:
            # What a check of a service exercises beyond it is trade-ops' model: own only.
            needs = r.needs if r.component is None or r.component in g.own else ()
            for c in (r.component, *needs):
                if c in g.down or (c in g.known and g.deps(c) & g.down):
                    found |= g.causes(c) if c in g.down else \
                        set().union(*(g.causes(d) for d in g.deps(c) & g.down))
                    r.rest_on(*sorted(g.via.get(c, ())), *([GRAPH] if c not in g.down or c != r.component
                                                          else []))
        if not found:
            r.cause = r.component or r.name
            r.rest_on(*([] if r.rests_on else ["its own answer"]))
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
    _one_fix_per_problem(results, g)
    return _root_causes(results, stack, g)


def _one_fix_per_problem(results: Sequence[CheckResult], g: _Graph) -> None:
    """A component whose process is dead or suspended has one fix, the process check's: its
    other failing checks (a suspended valkey's PING) say the same, not a second remedy
    (`trade-ops up --only valkey`, which waits 30 s and fails on the port it still holds)."""
    for r in results:
        root = g.primary.get(r.cause or "")
        if r.status == "fail" and r.cause == r.component and root is not None and root.group == "processes" \
                and root.remedy:
            r.remedy = root.remedy


def _named_by(g: _Graph, name: str) -> list[str]:
    return [by for by, named in g.named.items() if any(str(n["name"]) == name for n in named)]


def _root_causes(results: Sequence[CheckResult], stack: Stack, g: _Graph) -> list[RootCause]:
    causes: dict[str, RootCause] = {}
    for r in results:
        if r.status != "fail":
            continue
        names = dict.fromkeys([*([r.cause] if r.cause else []), *r.blocked_by])
        for name in names:
            entry = causes.setdefault(name, RootCause(name=name, checks=[], blocks=[]))
            entry.checks.append(r.name)
            if r.component and r.component != name and r.component not in entry.blocks:
                entry.blocks.append(r.component)
    examined = {r.component for r in results if r.component}
    for name, entry in causes.items():
        if name in g.external:
            ext = g.external[name]
            entry.kind, entry.evidence, entry.remedy = ext.kind, ext.evidence, _external_remedy(name, ext)
            entry.reason = f"named by {', '.join(ext.by)}: {ext.evidence[0]}"
            entry.rests_on = sorted({s for b in ext.by for s in g.via.get(b, ())})
        else:
            root = g.primary.get(name) or next(
                (r for r in results if r.status == "fail" and (r.cause == name or r.component == name)),
                None)
            entry.remedy = root.remedy if root else None
            entry.reason = (root.problems or root.details or [root.summary])[0] if root else ""
            entry.evidence = list(root.problems[:4]) if root else []
            entry.rests_on = list(root.rests_on) if root and root.rests_on else ["its own answer"]
        # Who depends on it: trade-ops' graph among its own services, evidence for the rest.
        graph = [d for d in stack.dependents(name) if d in examined and d in g.own] \
            if name in stack.components else []
        entry.dependents = list(dict.fromkeys([*graph, *_named_by(g, name)]))
    return sorted(causes.values(), key=lambda e: (-len(e.blocks), e.name))
