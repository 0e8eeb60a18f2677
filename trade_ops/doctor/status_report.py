"""STATUS_REPORT.md from a DoctorReport: made to be read rendered on GitHub.

`render_status_report(report)` is pure: `trade-ops doctor --report` and
`trade-ops report status` (from `<run_dir>/doctor-last.json`) both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trade_ops.doctor.model import GROUP_TITLES, GROUPS, CheckResult, DoctorReport

__all__ = ["render_status_report"]

ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").strip() or "—"


def _table(headers: Sequence[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, int | float) else "—"


def _checks(doc: DoctorReport, group: str) -> list[CheckResult]:
    return [c for c in doc.checks if c.group == group]


def _detail(check: CheckResult) -> str:
    if check.blocked_by:  # blocked, and still its own answer
        return "; ".join([f"blocked by {', '.join(check.blocked_by)}", *check.details])
    if check.status == "pass":
        return check.summary or "; ".join(check.details)
    return "; ".join(check.details) or check.summary


def _summary(doc: DoctorReport) -> list[str]:
    gate = doc.gate
    icon = "❌" if gate == "FAIL" else ("⚠️" if doc.status == "warn" else "✅")
    out = ["# Status report", "",
           f"> {icon} **Gate: {gate}** · overall status `{doc.status}` · "
           f"generated {doc.started_at} by `trade-ops doctor` in {doc.duration_ms / 1000:.2f} s", ""]
    if not doc.reachable and (doc.target.explicit or doc.target.foreign):
        out += ["**Nothing of the stack was reachable.** Check the addresses doctor was given "
                "(the services run where trade-ops does not start them).", ""]
    elif not doc.reachable:
        out += ["**Nothing of the stack was reachable.** Start it with `trade-ops up`, or point doctor at "
                "it with `--run-dir`, `--stack FILE` or `--url SVC=URL`.", ""]
    rows: list[list[Any]] = []
    for group in GROUPS:
        counts = doc.summary.get(group)
        if counts and counts.total:
            icon = "❌" if counts.fail else ("⚠️" if counts.warn else "✅")
            rows.append([GROUP_TITLES[group], f"{icon} {counts.passed}/{counts.total}", counts.warn,
                         counts.fail])
    return [*out, "## Summary", "", *_table(["Group", "Passed", "Warnings", "Failures"], rows)]


def _infrastructure(doc: DoctorReport) -> list[str]:
    checks = _checks(doc, "infrastructure")
    if not checks:
        return []
    rows = [[f"{ICON[c.status]} {c.name}", c.data.get("address"), c.data.get("version"),
             c.summary, _detail(c) if c.status != "pass" else "; ".join(c.details)]
            for c in checks]
    return ["## Infrastructure", "", *_table(["Component", "Address", "Version", "Status", "Details"], rows)]


def _services(doc: DoctorReport) -> list[str]:
    checks = _checks(doc, "services")
    if not checks:
        return []
    rows = []
    for c in checks:
        rows.append([f"{ICON[c.status]} {c.name}", c.data.get("url") or c.data.get("port"),
                     _ms(c.data.get("latency_ms")), c.data.get("http_status"), c.data.get("version"),
                     _detail(c) if c.status != "pass" else "healthy",
                     c.cause if c.status == "fail" else None])
    headers = ["Service", "Address", "Latency", "HTTP", "Version", "Checks", "Cause"]
    return ["## Services", "", *_table(headers, rows)]


def _simple(doc: DoctorReport, group: str, title: str, header: str) -> list[str]:
    checks = _checks(doc, group)
    if not checks:
        return []
    rows = [[f"{ICON[c.status]} {c.name}", _detail(c), _ms(c.duration_ms)] for c in checks]
    return [f"## {title}", "", *_table([header, "Result", "Time"], rows)]


def _bench(doc: DoctorReport) -> list[str]:
    bench = doc.bench
    out = ["## Latest benchmark", ""]
    if bench is None:
        return [*out, "No saved bench run (run `trade-ops bench oms --save NAME`).", ""]
    passed = bench.passed
    verdict = "no SLOs set" if passed is None else ("✅ all SLOs met" if passed else "❌ SLO breached")
    out += [f"Run **{bench.name}** (`{bench.path}`), saved {bench.saved_at}: {verdict}.", ""]
    keys = ("p50", "p90", "p99", "p999", "max", "mean")
    out += _table(keys, [[_ms(getattr(bench.latency_ms, k)) for k in keys]])
    if bench.slo:
        out += _table(["SLO", "Observed", "Met"],
                      [[f"`{s.expr}`", s.observed, "✅" if s.passed else "❌"] for s in bench.slo])
    return out


def _issues(doc: DoctorReport) -> list[str]:
    """Failures grouped under their root causes (each failing check has one), then warnings."""
    out = ["## Issues found", ""]
    n = 0
    for cause in doc.root_causes:
        n += 1
        blocks = f" Blocks {', '.join(cause.blocks)}." if cause.blocks else ""
        checks = f" Failing checks: {', '.join(cause.checks)}."
        kind = f" ({cause.kind})" if cause.kind != "component" else ""
        out.append(f"{n}. ❌ **{cause.name}**{kind}: {_cell(cause.reason)}.{blocks}{checks}  ")
        out.append(f"   **Fix:** `{cause.remedy or 'see the checks above'}`")
    for c in doc.checks:
        if c.status == "warn":
            n += 1
            out.append(f"{n}. ⚠️ **{c.name}**: {_cell('; '.join(c.details))}  ")
            if c.remedy:
                out.append(f"   **Fix:** `{c.remedy}`")
    if n == 0:
        out.append("None: every check passed.")
    return [*out, ""]


def _environment(doc: DoctorReport) -> list[str]:
    target = doc.target
    rows: list[list[Any]] = [[k, v] for k, v in doc.environment.items()]
    rows += [["stack", target.stack], ["run dir", target.run_dir], ["port offset", target.offset],
             ["examined", "exactly what was named (--url ...)" if target.explicit else "the stack"],
             ["judged by trade-ops' model", ", ".join(target.own) or "none"],
             ["judged by their own evidence", ", ".join(target.foreign) or "none"]]
    footer = f"<sub>Generated {doc.started_at} by `trade-ops doctor --report`.</sub>"
    return ["## Environment", "", *_table(["", "Value"], rows), footer, ""]


def render_status_report(doc: DoctorReport) -> str:
    parts = [
        _summary(doc), _infrastructure(doc), _services(doc),
        _simple(doc, "functional", "Functional tests", "Test"),
        _simple(doc, "dataflow", "Data flow", "Flow"),
        _simple(doc, "processes", "Processes and logs", "Process"),
        _simple(doc, "configuration", "Configuration", "Setting"),
        _bench(doc), _issues(doc), _environment(doc),
    ]
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"
