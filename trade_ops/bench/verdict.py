"""A run's verdict: SLOs, the default error gate, validity, and the exit code a CI reads.

    0 pass        every SLO met, some request succeeded, the measurement is valid
    1 fail        an SLO breached, errors above the gate, no successful request, or every
                  order rejected (these fail whatever the measurement's validity)
    4 invalid     the generator's lag could change the verdict or the figures (see results.py);
                  the figures are printed and saved, marked
    130           interrupted (Ctrl-C): the summary of what was measured so far

Every run carries `errors<1%` unless the user or the scenario sets an error SLO of its own.
"""

from __future__ import annotations

from trade_ops.bench.results import lag_reason
from trade_ops.bench.slo import Slo, evaluate, parse_slo
from trade_ops.errors import ExitCode
from trade_ops.savedruns import BenchResult

__all__ = ["DEFAULT_ERROR_SLO", "judge", "with_default_gates"]

DEFAULT_ERROR_SLO = "errors<1%"


def with_default_gates(slos: list[Slo]) -> list[Slo]:
    """The SLOs, plus the default error gate unless one of them already bounds errors."""
    if any(s.metric == "errors" for s in slos):
        return slos
    return [*slos, parse_slo(DEFAULT_ERROR_SLO)]


def judge(result: BenchResult, slos: list[Slo], max_lag_ms: float | None = None) -> ExitCode:
    """Fill in slo, valid, invalid_reason, failures, passed, status, exit_code; return the code."""
    result.slo = checks = evaluate(slos, result)
    reason = result.invalid_reason or lag_reason(result, slos, max_lag_ms)
    result.valid, result.invalid_reason = reason is None, reason
    hard: list[str] = []  # failures that no generator lag can explain
    if result.requests and result.ok == 0:
        hard.append(_all_rejected(result) if result.rejections == result.requests
                    else "no request succeeded")
    slo_by_expr = {s.expr: s for s in slos}
    for c in checks:
        if not c.passed and slo_by_expr[c.expr].metric == "errors":
            hard.append(f"SLO {c.expr} breached ({c.observed})")
    soft = [f"SLO {c.expr} breached ({c.observed})" for c in checks
            if not c.passed and slo_by_expr[c.expr].metric != "errors"]
    result.failures = hard + soft
    if result.interrupted:
        status, code = "interrupted", ExitCode.INTERRUPTED
    elif hard:
        status, code = "fail", ExitCode.FAILED
    elif reason is not None:
        status, code = "invalid", ExitCode.INVALID
    elif soft:
        status, code = "fail", ExitCode.FAILED
    else:
        status, code = "pass", ExitCode.OK
    result.passed = code == ExitCode.OK
    result.status, result.exit_code = status, int(code)
    return code


def _all_rejected(result: BenchResult) -> str:
    """Why a run whose every order was rejected fails: the OMS's own first answer."""
    samples = result.rejection_samples
    return "every order was rejected" + (f": {samples[0]}" if samples else "")
