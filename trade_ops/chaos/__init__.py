"""`trade-ops chaos`: load on the stack while a named fault is injected, then the
invariants checked from every trace an order leaves (faults.py, runner.py, verify.py)."""

from trade_ops.chaos.faults import FAULTS, parse_faults
from trade_ops.chaos.result import ChaosResult
from trade_ops.chaos.runner import ChaosRequest, run_chaos

__all__ = ["FAULTS", "ChaosRequest", "ChaosResult", "parse_faults", "run_chaos"]
