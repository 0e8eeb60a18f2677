"""trade_ops' import graph, read with `ast` (imports inside functions and under TYPE_CHECKING
count: a circle through either is still a circle in the design), and the floors of DESIGN.md.

    python -m tests.import_graph        lines, circles and upward arrows, each listed

Floors, top to bottom (an import may point down or stay on its floor, never up):

    cli, __main__                7
    commands/                    6   a command module (one that defines `register`) imports
                                     no other command module, only the package's helpers
    doctor/ bench/ chaos/ report/ render/
                                 5   the library (bench < report, chaos < render: see LIBRARY_ORDER)
    context                      4
    runtime/                     3
    the rest of trade_ops        2   plain data and its derivations (stack, rundir, ...)
    services/                    1   the bus contract and the services' env names
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Graph", "floor", "read_graph", "upward_arrows"]

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("doctor", "bench", "chaos", "report", "render")
# Inside the library floor, what may use what: report compares bench's saved runs, chaos
# drives bench's load generator, render/ turns every result into text; doctor and bench
# stand alone.
LIBRARY_ORDER = {"bench": 0, "doctor": 0, "chaos": 1, "report": 1, "render": 2}


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)  # importer -> imported (trade_ops/services)
    lines: dict[str, int] = field(default_factory=dict)
    commands: set[str] = field(default_factory=set)  # command modules (define `register`)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def read_graph(packages: tuple[str, ...] = ("trade_ops",)) -> Graph:
    graph = Graph()
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            graph.modules[_module_name(path)] = path
    known = set(graph.modules) | {m.split(".")[0] for m in graph.modules}
    for name, path in graph.modules.items():
        source = path.read_text()
        graph.lines[name] = len(source.splitlines())
        tree = ast.parse(source)
        if any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in tree.body):
            graph.commands.add(name)
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                mod = _resolve(name, path.name == "__init__.py", node)
                # `from pkg import mod` imports the module pkg.mod when there is one
                subs = [f"{mod}.{alias.name}" for alias in node.names]
                found = [s for s in subs if s in graph.modules]
                targets.update(found or [mod])
                if len(found) < len(subs):
                    targets.add(mod)
        graph.edges[name] = {_owner(t, graph.modules) for t in targets
                             if t.split(".")[0] in known and _owner(t, graph.modules) != name} - {""}
    return graph


def _owner(target: str, modules: dict[str, Path]) -> str:
    """The module a dotted import name lands in (services.env -> services.env; a.b.Name -> a.b)."""
    parts = target.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts)


def floor(module: str) -> tuple[int, int]:
    """(floor, rank inside the floor) of a module, per the module docstring."""
    parts = module.split(".")
    if parts[0] == "services":
        return (1, 0)
    sub = parts[1] if len(parts) > 1 else ""
    if sub in ("cli", "__main__"):
        return (7, 0)
    if sub == "commands":
        return (6, 0)
    if sub in LIBRARY:
        return (5, LIBRARY_ORDER[sub])
    if sub == "context":
        return (4, 0)
    if sub == "runtime":
        return (3, 0)
    return (2, 0)


def upward_arrows(graph: Graph) -> list[tuple[str, str]]:
    """Imports that point up a floor, across the library's order, or from one command to another."""
    found = []
    for src, targets in graph.edges.items():
        for dst in targets:
            if not dst.startswith("trade_ops") and not dst.startswith("services"):
                continue
            (fs, rs), (fd, rd) = floor(src), floor(dst)
            src_pkg, dst_pkg = src.split(".")[:2], dst.split(".")[:2]
            up = fd > fs or (fd == fs == 5 and src_pkg != dst_pkg and rd >= rs)
            if fd == fs == 6 and dst in graph.commands:
                up = True
            if up:
                found.append((src, dst))
    return sorted(found)


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.edges.get(v, ())):
            if w not in graph.edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph.edges):
        if v not in index:
            visit(v)
    return sorted(groups)


def main() -> None:
    graph = read_graph()
    services = read_graph(("services",))
    found = circles(graph)
    arrows = upward_arrows(graph)
    print(f"lines: trade_ops {sum(graph.lines.values())} in {len(graph.modules)} modules, "
          f"services {sum(services.lines.values())} in {len(services.modules)} modules")
    print(f"circles: {len(found)}")
    for group in found:
        print("  " + " <-> ".join(group))
    print(f"upward arrows: {len(arrows)}")
    for src, dst in arrows:
        print(f"  {src} -> {dst}")


if __name__ == "__main__":
    main()
