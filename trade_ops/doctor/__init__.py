"""`trade-ops doctor`: every problem of a running stack, its root cause and its fix.

    target.py          what to examine (run dir state, stack file, --url overrides)
    check_*.py         the checks, by group; each fills in one CheckResult
    runner.py          runs them concurrently, bounded, and builds the document
    rootcause.py       walks the dependency graph from failures to their root causes
    render.py          the terminal view;  status_report.py  STATUS_REPORT.md
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trade_ops.doctor.model import CheckResult
    from trade_ops.doctor.runner import run_doctor, save_last
    from trade_ops.doctor.status_report import render_status_report
    from trade_ops.doctor.target import build_target

__all__ = ["CheckResult", "build_target", "render_status_report", "run_doctor", "save_last"]

# Imported when first asked for: `python -m trade_ops.doctor.reconcile` (the reconciliation's
# child, started on every doctor run) imports this package first, and the runner's imports
# were 0.2 s of its start.
_WHERE = {"CheckResult": "model", "build_target": "target", "render_status_report": "status_report",
          "run_doctor": "runner", "save_last": "runner"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
