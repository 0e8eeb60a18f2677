"""The terminal view, flutter-doctor style: a line per component, details and fixes under it.

Rendered from the DoctorReport (not the live checks), so `--watch` and a saved
`doctor-last.json` show the same thing.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from trade_ops.doctor.model import GROUP_TITLES, GROUPS, CheckResult, DoctorReport

__all__ = ["MARKS", "changes", "render", "summary_line", "verdict"]

MARKS = {"pass": "[green][✓][/]", "warn": "[yellow][!][/]", "fail": "[red][✗][/]", "skip": "[dim][-][/]"}


def summary_line(doc: DoctorReport) -> str:
    parts = []
    for group in GROUPS:
        counts = doc.summary.get(group)
        if counts and counts.total:
            parts.append(f"{GROUP_TITLES[group]} {counts.passed}/{counts.total}")
    return " · ".join(parts)


def verdict(doc: DoctorReport) -> str:
    return doc.gate


def _timing(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.0f} ms"


def _check_lines(check: CheckResult, verbose: bool) -> list[str]:
    name = f"[bold]{escape(check.name)}[/]"
    summary = escape(check.summary)
    timing = f"[dim]({_timing(check.duration_ms)})[/]"
    blocked = check.blocked_by
    if check.status == "fail" and blocked:
        # Its own answer still shows: being blocked by something else hides nothing it said.
        lines = [f" {MARKS['fail']} {name}  [dim]blocked by[/] [red]{escape(', '.join(blocked))}[/] {timing}"]
    else:
        lines = [f" {MARKS[check.status]} {name}  {summary} {timing}".rstrip()]
    problems = set(check.problems)
    color = "red" if check.status == "fail" else "yellow"
    for detail in check.details:
        if check.status == "pass" and not verbose:
            break
        if check.status == "skip" and detail == check.summary:  # already on its line
            continue
        if detail in problems:
            lines.append(f"     [{color}]✗[/] {escape(detail)}")
        else:
            lines.append(f"     [dim]• {escape(detail)}[/]")
    for line in check.log_tail:
        lines.append(f"       [dim]│ {escape(line)}[/]")
    if check.status in ("fail", "warn") and check.remedy:
        lines.append(f"     [cyan]→ {escape(check.remedy)}[/]")
    return lines


def render(doc: DoctorReport, console: Console, verbose: bool = False) -> None:
    # Printed at once: Rich measures the terminal and parses markup at each print (80-odd
    # prints were ~30 ms of every run's end).
    lines: list[str] = []
    say = lines.append

    target = doc.target
    say(f"[bold]trade-ops doctor[/]  [dim]stack {escape(target.stack)} · "
                  f"run dir {escape(target.run_dir)} · {doc.started_at}[/]")
    for group in GROUPS:
        checks = [c for c in doc.checks if c.group == group]
        if not checks:
            continue
        say(f"\n[bold underline]{GROUP_TITLES[group]}[/]")
        for check in checks:
            for line in _check_lines(check, verbose):
                say(line)
    causes = doc.root_causes
    if causes:
        say("\n[bold underline]Root causes[/]")
        for cause in causes:
            reason = escape(cause.reason)
            kind = f" [dim]({cause.kind})[/]" if cause.kind != "component" else ""
            say(f" {MARKS['fail']} [bold]{escape(cause.name)}[/]{kind}  {reason}")
            if cause.blocks:
                say(f"     blocks {escape(', '.join(cause.blocks))}")
            if cause.remedy:
                say(f"     [cyan]→ {escape(cause.remedy)}[/]")
    if not doc.reachable:
        if target.explicit or target.foreign:  # trade-ops runs nothing there
            say("\n[bold red]Nothing of the stack is reachable.[/] Check the addresses doctor was "
                "given (the services run where trade-ops does not start them).")
        else:
            say("\n[bold red]Nothing of the stack is reachable.[/] "
                "Start it with [cyan]trade-ops up[/], or point doctor at it: "
                "[cyan]--run-dir[/], [cyan]--stack FILE[/], "
                "[cyan]--url SVC=URL[/].")
    warns = sum(c.status == "warn" for c in doc.checks)
    gate = verdict(doc)
    color = "red" if gate == "FAIL" else "green"
    tail = f" [yellow]({warns} warning{'s' if warns != 1 else ''})[/]" if warns and gate == "PASS" else ""
    say(f"\n{summary_line(doc)}")
    say(f"[bold {color}]{gate}[/]{tail}  [dim]in {_timing(doc.duration_ms)}[/]")
    console.print("\n".join(lines), emoji=False, highlight=False)  # ":100" is a port, not an emoji


def changes(before: DoctorReport | None, after: DoctorReport) -> list[str]:
    """What changed between two runs, one line per check whose status moved."""
    if before is None:
        return []
    old = {c.name: c.status for c in before.checks}
    new = {c.name: c.status for c in after.checks}
    out = []
    for name, status in new.items():
        if name not in old:
            out.append(f"{name}: new, {status}")
        elif old[name] != status:
            out.append(f"{name}: {old[name]} -> {status}")
    out.extend(f"{name}: gone" for name in old if name not in new)
    return out
