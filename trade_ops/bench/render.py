"""What a human sees: a live line while a run is going (stderr), and the final table."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from trade_ops.bench import hist
from trade_ops.bench.loadgen import Progress

__all__ = ["LiveLine", "cpu_line", "find_max_table", "result_table", "verdict_lines"]


class LiveLine:
    """sent, rate, in flight, p50/p99 so far, errors; refreshed by the load's ticker."""

    def __init__(self, console: Console, label: str) -> None:
        self.label = label
        self.hist = hist.new()
        self.seen = 0
        self.last = (time.perf_counter(), 0)
        self.live = Live(Text(f"{label}: starting"), console=console, auto_refresh=False, transient=True)

    def __enter__(self) -> LiveLine:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def tick(self, p: Progress) -> None:
        raw, n = p.raw, p.completed
        for j in range(self.seen, n):
            hist.record_s(self.hist, raw.done[j] - raw.intended[j])
        self.seen = n
        now = time.perf_counter()
        rate = (p.sent - self.last[1]) / max(now - self.last[0], 1e-6)
        self.last = (now, p.sent)
        s = hist.summary_ms(self.hist)
        line = (f"{self.label}  {now - p.started:5.1f}s  sent {p.sent:,}  rate {rate:,.0f}/s  "
                f"in flight {p.in_flight}  p50 {s['p50']:.2f} ms  p99 {s['p99']:.2f} ms  errors {p.errors}")
        self.live.update(Text(line, style="red" if p.errors else ""), refresh=True)


def _ms(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def result_table(r: dict[str, Any], title: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
              collapse_padding=True)
    for col in ("ms", "count", "rate/s", "mean", "p50", "p90", "p99", "p99.9", "max", "errors"):
        t.add_column(col, justify="left" if col == "ms" else "right", no_wrap=True)
    rows = [("latency", "latency_ms"), ("service", "service_time_ms")]
    if r["corrected"]:
        rows.append(("lag", "schedule_lag_ms"))
    for label, key in rows:
        s = r[key]
        first = key == "latency_ms"
        t.add_row(label, f"{r['requests']:,}" if first else "", f"{r['rate']:,.1f}" if first else "",
                  *(_ms(s[k]) for k in ("mean", "p50", "p90", "p99", "p999", "max")),
                  str(r["errors"]) if first else "")
    t.caption = ("latency from each request's intended start; service from its send; lag: generator delay"
                 if r["corrected"] else "closed loop: latency = service time")
    t.caption_justify = "left"
    return t


def verdict_lines(r: dict[str, Any], calibration: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    if r["errors_by_kind"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in r["errors_by_kind"].items()))
        lines += [f"  {k}: {v}" for k, v in r.get("error_samples", {}).items()]
    if r["rejections"]:
        lines.append(f"risk rejections (not errors): {r['rejections']}")
    if calibration:
        lines.append(f"generator overhead (null endpoint): p50 {calibration['overhead_p50_ms']:.3f} ms, "
                     f"p99 {calibration['overhead_p99_ms']:.3f} ms"
                     + (f", max rate {calibration['max_rate']:,.0f}/s"
                        if calibration.get("max_rate") else ""))
    if r.get("cpu"):
        lines.append(cpu_line(r["cpu"]))
    if not r["valid"]:
        lines.append(f"[bold red]INVALID RUN:[/] {r['invalid_reason']}")
    for c in r.get("slo", []):
        mark = "[green]pass[/]" if c["passed"] else "[bold red]FAIL[/]"
        lines.append(f"SLO {c['expr']:<16} {mark}  ({c['observed']})")
    return lines


def cpu_line(cpu: dict[str, Any], top: int = 6) -> str:
    """'CPU per request: 16.1 ms on the stack (nats 3.0, oms 2.2, ...); bound 124/s on 2 cores'."""
    parts = [f"{name} {ms:.2f}" for name, ms in list(cpu["ms_per_request"].items())[:top]]
    bound = f"; at most {cpu['bound_rate']:,.0f}/s on {cpu['cores']} cores" if cpu["bound_rate"] else ""
    return (f"CPU per request: {cpu['stack_ms_per_request']:.2f} ms on the stack "
            f"({', '.join(parts)} ms){bound}")


def find_max_table(fm: dict[str, Any]) -> Table:
    t = Table(title="find-max steps", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("rate/s", "achieved/s", "p50 ms", "p99 ms", "lag p99 ms", "errors", "valid", "passed"):
        t.add_column(col, justify="right")
    for s in fm["steps"]:
        t.add_row(f"{s['rate']:,.0f}", f"{s.get('rate_achieved', 0):,.0f}", _ms(s.get("p50_ms", 0)),
                  _ms(s.get("p99_ms", 0)), _ms(s.get("lag_p99_ms", 0)), str(s.get("errors", "")),
                  "yes" if s.get("valid") else "[red]no[/]", "[green]yes[/]" if s["passed"] else "[red]no[/]")
    return t
