"""STATUS_REPORT.md from a doctor document: made to be read rendered on GitHub.

`render_status_report(doc)` is pure: `trade-ops doctor --report` and
`trade-ops report status` (from `<run_dir>/doctor-last.json`) both call it.
"""

from __future__ import annotations

from typing import Any

from trade_ops.doctor.model import GROUP_TITLES, GROUPS

__all__ = ["render_status_report"]

ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌", "skip": "⏭️"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ").strip() or "—"


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*out, ""]


def _ms(value: Any) -> str:
    return f"{value:.1f} ms" if isinstance(value, int | float) else "—"


def _checks(doc: dict[str, Any], group: str) -> list[dict[str, Any]]:
    return [c for c in doc.get("checks", []) if c["group"] == group]


def _detail(check: dict[str, Any]) -> str:
    details = check.get("details") or []
    if check.get("blocked_by"):  # blocked, and still its own answer
        return "; ".join([f"blocked by {', '.join(check['blocked_by'])}", *details])
    if check["status"] == "pass":
        return check.get("summary") or "; ".join(details)
    return "; ".join(details) or check.get("summary") or ""


def _summary(doc: dict[str, Any]) -> list[str]:
    gate = "FAIL" if doc.get("status") == "fail" or doc.get("exit_code") else "PASS"
    icon = "❌" if gate == "FAIL" else ("⚠️" if doc.get("status") == "warn" else "✅")
    out = ["# Status report", "",
           f"> {icon} **Gate: {gate}** · overall status `{doc.get('status')}` · "
           f"generated {doc.get('started_at', '?')} by `trade-ops doctor` in "
           f"{(doc.get('duration_ms') or 0) / 1000:.2f} s", ""]
    target = doc.get("target") or {}
    if not doc.get("reachable", True) and (target.get("explicit") or target.get("foreign")):
        out += ["**Nothing of the stack was reachable.** Check the addresses doctor was given "
                "(the services run where trade-ops does not start them).", ""]
    elif not doc.get("reachable", True):
        out += ["**Nothing of the stack was reachable.** Start it with `trade-ops up`, or point doctor at "
                "it with `--run-dir`, `--stack FILE` or `--url SVC=URL`.", ""]
    rows = []
    for group in GROUPS:
        counts = (doc.get("summary") or {}).get(group) or {}
        if counts.get("total"):
            icon = "❌" if counts.get("fail") else ("⚠️" if counts.get("warn") else "✅")
            rows.append([GROUP_TITLES[group], f"{icon} {counts['pass']}/{counts['total']}",
                         counts.get("warn", 0), counts.get("fail", 0)])
    return [*out, "## Summary", "", *_table(["Group", "Passed", "Warnings", "Failures"], rows)]


def _infrastructure(doc: dict[str, Any]) -> list[str]:
    checks = _checks(doc, "infrastructure")
    if not checks:
        return []
    rows = [[f"{ICON[c['status']]} {c['name']}", (c.get("data") or {}).get("address"),
             (c.get("data") or {}).get("version"),
             c.get("summary"), _detail(c) if c["status"] != "pass" else "; ".join(c.get("details") or [])]
            for c in checks]
    return ["## Infrastructure", "", *_table(["Component", "Address", "Version", "Status", "Details"], rows)]


def _services(doc: dict[str, Any]) -> list[str]:
    checks = _checks(doc, "services")
    if not checks:
        return []
    rows = []
    for c in checks:
        data = c.get("data") or {}
        rows.append([f"{ICON[c['status']]} {c['name']}", data.get("url") or data.get("port"),
                     _ms(data.get("latency_ms")), data.get("http_status"), data.get("version"),
                     _detail(c) if c["status"] != "pass" else "healthy",
                     c.get("cause") if c["status"] == "fail" else None])
    headers = ["Service", "Address", "Latency", "HTTP", "Version", "Checks", "Cause"]
    return ["## Services", "", *_table(headers, rows)]


def _simple(doc: dict[str, Any], group: str, title: str, header: str) -> list[str]:
    checks = _checks(doc, group)
    if not checks:
        return []
    rows = [[f"{ICON[c['status']]} {c['name']}", _detail(c), _ms(c.get("duration_ms"))] for c in checks]
    return [f"## {title}", "", *_table([header, "Result", "Time"], rows)]


def _bench(doc: dict[str, Any]) -> list[str]:
    bench = doc.get("bench")
    out = ["## Latest benchmark", ""]
    if not bench:
        return [*out, "No saved bench run (run `trade-ops bench oms --save NAME`).", ""]
    passed = bench.get("passed")
    verdict = "no SLOs set" if passed is None else ("✅ all SLOs met" if passed else "❌ SLO breached")
    out += [f"Run **{bench.get('name')}** (`{bench.get('path')}`), saved {bench.get('saved_at')}: "
            f"{verdict}.", ""]
    latency = bench.get("latency_ms") or {}
    keys = [k for k in ("p50", "p90", "p99", "p999", "max", "mean") if k in latency]
    if keys:
        out += _table(keys, [[_ms(latency[k]) for k in keys]])
    if bench.get("slo"):
        out += _table(["SLO", "Observed", "Met"],
                      [[f"`{s.get('expr')}`", s.get("observed"), "✅" if s.get("passed") else "❌"]
                       for s in bench["slo"]])
    return out


def _issues(doc: dict[str, Any]) -> list[str]:
    """Failures grouped under their root causes (each failing check has one), then warnings."""
    out = ["## Issues found", ""]
    n = 0
    for cause in doc.get("root_causes") or []:
        n += 1
        blocks = f" Blocks {', '.join(cause['blocks'])}." if cause.get("blocks") else ""
        checks = f" Failing checks: {', '.join(cause.get('checks') or [])}."
        kind = f" ({cause['kind']})" if cause.get("kind", "component") != "component" else ""
        out.append(f"{n}. ❌ **{cause['name']}**{kind}: {_cell(cause.get('reason'))}.{blocks}{checks}  ")
        out.append(f"   **Fix:** `{cause.get('remedy') or 'see the checks above'}`")
    for c in doc.get("checks", []):
        if c["status"] == "warn":
            n += 1
            out.append(f"{n}. ⚠️ **{c['name']}**: {_cell('; '.join(c.get('details') or []))}  ")
            if c.get("remedy"):
                out.append(f"   **Fix:** `{c['remedy']}`")
    if n == 0:
        out.append("None: every check passed.")
    return [*out, ""]


def _environment(doc: dict[str, Any]) -> list[str]:
    env = doc.get("environment") or {}
    target = doc.get("target") or {}
    rows = [[k, v] for k, v in env.items()]
    rows += [["stack", target.get("stack")], ["run dir", target.get("run_dir")],
             ["port offset", target.get("offset")],
             ["examined", "exactly what was named (--url ...)" if target.get("explicit") else "the stack"],
             ["judged by trade-ops' model", ", ".join(target.get("own") or []) or "none"],
             ["judged by their own evidence", ", ".join(target.get("foreign") or []) or "none"]]
    footer = f"<sub>Generated {doc.get('started_at', '?')} by `trade-ops doctor --report`.</sub>"
    return ["## Environment", "", *_table(["", "Value"], rows), footer, ""]


def render_status_report(doc: dict[str, Any]) -> str:
    parts = [
        _summary(doc), _infrastructure(doc), _services(doc),
        _simple(doc, "functional", "Functional tests", "Test"),
        _simple(doc, "dataflow", "Data flow", "Flow"),
        _simple(doc, "processes", "Processes and logs", "Process"),
        _simple(doc, "configuration", "Configuration", "Setting"),
        _bench(doc), _issues(doc), _environment(doc),
    ]
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"
