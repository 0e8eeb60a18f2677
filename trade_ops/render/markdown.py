"""The markdown a CI job summary shows for a bench run, a chaos run and a comparison.

doctor's is its STATUS_REPORT.md (doctor/status_report.py); report perf's is its report
without the plots (they are files next to it, which a job summary cannot show).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trade_ops.chaos.result import INVARIANTS
from trade_ops.report.markdown import table

if TYPE_CHECKING:
    from trade_ops.chaos.result import ChaosResult
    from trade_ops.report.perf import PerfReport
    from trade_ops.savedruns import BenchResult

__all__ = ["bench_markdown", "chaos_markdown", "perf_markdown"]

_VERDICT = {"pass": "✅ PASS", "fail": "❌ FAIL", "interrupted": "⚠️ INTERRUPTED",
            "invalid": "⚠️ INVALID MEASUREMENT (exit 4): figures not trusted"}


def _ms(value: Any) -> str:
    return f"{value:.3g} ms" if isinstance(value, int | float) else "?"


def bench_markdown(result: BenchResult) -> str:
    lat = result.latency_ms
    repeat = f", {result.repeat} runs" if result.repeat > 1 else ""
    lines = [f"## trade-ops bench {result.target}: scenario `{result.scenario}`{repeat}", "",
             f"**{_VERDICT.get(result.status, result.status)}** · {result.url} · exit {result.exit_code}", "",
             *table(["requests", "rate/s", "errors", "rejections", "p50", "p90", "p99", "p99.9", "max"],
                    [[result.requests, f"{result.rate:,.1f}", result.errors, result.rejections,
                      *(_ms(v) for v in (lat.p50, lat.p90, lat.p99, lat.p999, lat.max))]]), ""]
    if result.slo:
        lines += table(["SLO", "measured", "verdict"],
                       [[f"`{s.expr}`", s.observed, "pass" if s.passed else "**FAIL**"] for s in result.slo])
        lines.append("")
    lines += [f"- **{f}**" for f in result.failures if not f.startswith("SLO ")]
    if not result.valid:
        lines.append(f"- invalid measurement: {result.invalid_reason}")
    if result.overload:  # delivered less than the rate asked (set by the bench's analysis)
        lines.append(f"- **{result.overload}**")
    if result.errors_by_kind:
        lines.append("- errors: " + ", ".join(f"{k} {v}" for k, v in result.errors_by_kind.items()))
    lines += [f"- rejected: `{sample}`" for sample in result.rejection_samples]
    return "\n".join(lines).rstrip() + "\n"


def chaos_markdown(result: ChaosResult) -> str:
    faults = ", ".join(f"`{f.fault}`" for f in result.faults) or "none"
    lines = [f"## trade-ops chaos {result.run_id}", "",
             f"**{'✅ PASS' if result.passed else '❌ FAIL'}** · {result.rate} orders/s for "
             f"{result.duration_s} s · faults {faults}", "",
             f"Sent {result.sent}, acknowledged (201) {result.acknowledged}, retried {result.retried}.", "",
             *table(["invariant", "orders breaking it", "examples"],
                    [[name.replace("_", " "), result.broken(name), "; ".join(result.examples.of(name)[:2])]
                     for name in INVARIANTS])]
    return "\n".join(lines).rstrip() + "\n"


def perf_markdown(report: PerfReport) -> str:
    """The report as written, its plots section replaced by where the plots are."""
    text = report.path.read_text(encoding="utf-8")
    head, sep, tail = text.partition("\n## Plots\n")
    if not sep:
        return text
    _, sep2, rest = tail.partition("\n## ")
    where = f"The plots are beside `{report.path}` (and in the HTML page, with `--html`).\n"
    return f"{head}\n## Plots\n\n{where}" + (f"\n## {rest}" if sep2 else "")
