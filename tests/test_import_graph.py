"""trade_ops' imports point down its floors (DESIGN.md, "The house") and run in no circle,
imports inside functions and under TYPE_CHECKING included. `python -m tests.import_graph`
prints the figures and each offender."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tests import import_graph
from tests.import_graph import Graph, circles, read_graph, upward_arrows

pytestmark = pytest.mark.unit


def test_no_circle_and_no_upward_import_in_trade_ops() -> None:
    graph = read_graph()
    assert circles(graph) == []
    assert upward_arrows(graph) == []


def test_no_module_outside_the_runtimes_asks_for_a_runtime_by_name() -> None:
    # `runtime == "docker"` (or state.runtime == "process") outside trade_ops/runtime/ is a
    # branch on the runtime's name: what differs belongs to a method of the Runtime.
    offenders = []
    for path in (import_graph.ROOT / "trade_ops").rglob("*.py"):
        if "runtime" in path.relative_to(import_graph.ROOT).parts[1:2]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                    isinstance(side, ast.Constant) and side.value in ("docker", "process")
                    for side in (node.left, *node.comparators)):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def _graph(tmp_path: Path, files: dict[str, str]) -> Graph:
    for name, text in files.items():
        path = tmp_path / "trade_ops" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    old = import_graph.ROOT
    import_graph.ROOT = tmp_path
    try:
        return read_graph()
    finally:
        import_graph.ROOT = old


def test_the_graph_sees_a_circle_through_a_function_and_an_upward_import(tmp_path: Path) -> None:
    graph = _graph(tmp_path, {
        "__init__.py": "",
        "rundir.py": "def running():\n    from trade_ops import runtime\n",
        "runtime/__init__.py": "from trade_ops.rundir import running\n",
        "doctor/__init__.py": "",
        "doctor/runner.py": "from trade_ops.bench.runs import load\n",
        "bench/__init__.py": "",
        "bench/runs.py": "load = 1\n",
        "commands/__init__.py": "",
        "commands/up.py": "def register(app): ...\n",
        "commands/doctor.py": "from trade_ops.commands.up import register\ndef register(app): ...\n",
        "commands/options.py": "X = 1\n",
        "commands/down.py": "from trade_ops.commands.options import X\ndef register(app): ...\n",
    })
    assert circles(graph) == [["trade_ops.rundir", "trade_ops.runtime"]]
    assert upward_arrows(graph) == [("trade_ops.commands.doctor", "trade_ops.commands.up"),
                                    ("trade_ops.doctor.runner", "trade_ops.bench.runs"),
                                    ("trade_ops.rundir", "trade_ops.runtime")]


def test_only_the_runtimes_reach_into_the_process_supervisor() -> None:
    # Logs, processes and faults are the Runtime's methods: doctor read the supervisor's log
    # files itself (check_infra), which a stack in containers does not have.
    graph = read_graph()
    reach = sorted(m for m, imported in graph.edges.items()
                   if "trade_ops.runtime.supervisor" in imported and not m.startswith("trade_ops.runtime"))
    assert reach == []
