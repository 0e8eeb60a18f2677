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

__all__ = ["bench_markdown", "chaos_markdown", "perf_markdown"]

_VERDICT = {"pass": "✅ PASS", "fail": "❌ FAIL", "interrupted": "⚠️ INTERRUPTED",
            "invalid": "⚠️ INVALID MEASUREMENT (exit 4): figures not trusted"}


def _ms(value: Any) -> str:
    return f"{value:.3g} ms" if isinstance(value, int | float) else "?"


def bench_markdown(result: dict[str, Any]) -> str:
    lat = result.get("latency_ms") or {}
    repeat = f", {result['repeat']} runs" if (result.get("repeat") or 1) > 1 else ""
    lines = [f"## trade-ops bench {result.get('target')}: scenario `{result.get('scenario')}`{repeat}", "",
             f"**{_VERDICT.get(str(result.get('status')), result.get('status'))}** · {result.get('url')} · "
             f"exit {result.get('exit_code')}", "",
             *table(["requests", "rate/s", "errors", "rejections", "p50", "p90", "p99", "p99.9", "max"],
                    [[result.get("requests"), f"{float(result.get('rate') or 0):,.1f}", result.get("errors"),
                      result.get("rejections", 0), *(_ms(lat.get(k)) for k in ("p50", "p90", "p99", "p999",
                                                                                  "max"))]]), ""]
    slos = result.get("slo") or []
    if slos:
        lines += table(["SLO", "measured", "verdict"],
                       [[f"`{s['expr']}`", s["observed"], "pass" if s["passed"] else "**FAIL**"]
                        for s in slos])
        lines.append("")
    lines += [f"- **{f}**" for f in result.get("failures") or [] if not f.startswith("SLO ")]
    if not result.get("valid", True):
        lines.append(f"- invalid measurement: {result.get('invalid_reason')}")
    if result.get("overload"):  # delivered less than the rate asked (set by the bench's analysis)
        lines.append(f"- **{result['overload']}**")
    if result.get("errors_by_kind"):
        lines.append("- errors: " + ", ".join(f"{k} {v}" for k, v in result["errors_by_kind"].items()))
    lines += [f"- rejected: `{sample}`" for sample in result.get("rejection_samples") or []]
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
