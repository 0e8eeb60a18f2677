"""What a human sees: a live line while a run is going (stderr), and the final table."""

from __future__ import annotations

import time

from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from trade_ops.bench import hist
from trade_ops.bench.loadgen import Progress
from trade_ops.savedruns import BenchResult, Calibration, CpuUse, FindMax

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


def result_table(r: BenchResult, title: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
              collapse_padding=True)
    for col in ("ms", "count", "rate/s", "mean", "p50", "p90", "p99", "p99.9", "max", "errors"):
        t.add_column(col, justify="left" if col == "ms" else "right", no_wrap=True)
    rows = [("latency", r.latency_ms), ("service", r.service_time_ms)]
    if r.corrected:
        rows.append(("lag", r.schedule_lag_ms))
    for label, s in rows:
        first = label == "latency"
        t.add_row(label, f"{r.requests:,}" if first else "", f"{r.rate:,.1f}" if first else "",
                  *(_ms(v) for v in (s.mean, s.p50, s.p90, s.p99, s.p999, s.max)),
                  str(r.errors) if first else "")
    t.caption = ("latency from each request's intended start; service from its send; lag: generator delay"
                 if r.corrected else "closed loop: latency = service time")
    t.caption_justify = "left"
    return t


def verdict_lines(r: BenchResult, calibration: Calibration | None) -> list[str]:
    lines: list[str] = []
    if r.errors_by_kind:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in r.errors_by_kind.items()))
        lines += [f"  {k}: {escape(line)}" for k, found in r.error_samples.items() for line in found]
    if r.rejections:
        lines.append(f"rejections (the OMS's verdict, not errors): {r.rejections}")
        lines += [f"  rejected: {escape(line)}" for line in r.rejection_samples]
    if calibration:
        lines.append(f"generator overhead (null endpoint): p50 {calibration.overhead_p50_ms:.3f} ms, "
                     f"p99 {calibration.overhead_p99_ms:.3f} ms"
                     + (f", max rate {calibration.max_rate:,.0f}/s" if calibration.max_rate else ""))
    if r.cpu:
        lines.append(cpu_line(r.cpu))
    if r.overload:
        lines.append(f"[bold yellow]OVERLOADED:[/] {escape(r.overload.removeprefix('overloaded: '))}")
    if not r.valid:
        lines.append(f"[bold yellow]INVALID MEASUREMENT:[/] {escape(r.invalid_reason or '')}")
    if r.interrupted:
        lines.append("[bold yellow]interrupted[/] (Ctrl-C): these figures cover what was answered before it")
    for c in r.slo:
        mark = "[green]pass[/]" if c.passed else "[bold red]FAIL[/]"
        lines.append(f"SLO {escape(c.expr):<16} {mark}  ({c.observed})")
    for failure in r.failures:
        if not failure.startswith("SLO "):
            lines.append(f"[bold red]FAIL:[/] {escape(failure)}")
    cond = r.conditions
    if cond is not None and cond.before.loadavg and cond.after.loadavg:
        steal = f", CPU steal {cond.steal_pct:g}%" if cond.steal_pct is not None else ""
        lines.append(f"[dim]host load average {cond.before.loadavg[0]:.2f} before, "
                     f"{cond.after.loadavg[0]:.2f} after{steal}[/]")
    return lines


def cpu_line(cpu: CpuUse, top: int = 6) -> str:
    """'CPU per request: 16.10 ms on the stack = nats 3.00 + oms 2.20 + ... ms (idle subtracted);
    estimated bound 124/s on 2 cores (if CPU were the only limit)'."""
    items = [(k, v) for k, v in cpu.ms_per_request.items() if not k.startswith("(")]
    shown = [f"{name} {ms:.2f}" for name, ms in items[:top]]
    rest = sum(ms for _, ms in items[top:])
    if len(items) > top:
        shown.append(f"{len(items) - top} others {rest:.2f}")
    idle = "idle rates subtracted" if cpu.idle_subtracted else "idle rates not measured"
    bound = ""
    if cpu.bound_rate:
        free, others = cpu.bound_rate_free, cpu.others_cores
        bound = (f"; estimated bound {cpu.bound_rate:,.0f}/s on all {cpu.cores} cores"
                 + (f", {free:,.0f}/s on the {cpu.cores - (others or 0.0):.1f} other processes left free"
                    if free is not None and others else "")
                 + " (assumes CPU is the only limit and those cores serve nothing else)")
    settle = cpu.settle_s
    if settle is None:
        counted = ""
    elif cpu.settled:
        counted = f", counted until the stack was idle again ({settle:.1f} s after the load)"
    else:
        counted = f", counted {settle:.1f} s after the load (the stack was not idle again by then)"
    gen = cpu.generator_ms_per_request
    gen_text = f"; load generator {gen:.2f} ms, not counted" if gen is not None else ""
    return (f"CPU per request: {cpu.stack_ms_per_request:.2f} ms on the stack = "
            f"{' + '.join(shown) or '0'} ms ({idle}{counted}){gen_text}{bound}")


def find_max_table(fm: FindMax) -> Table:
    t = Table(title="find-max steps", title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("rate/s", "achieved/s", "p50 ms", "p99 ms", "lag p99 ms", "errors", "valid", "passed"):
        t.add_column(col, justify="right")
    for s in fm.steps:
        t.add_row(f"{s.rate:,.0f}", f"{s.rate_achieved or 0:,.0f}", _ms(s.p50_ms or 0), _ms(s.p99_ms or 0),
                  _ms(s.lag_p99_ms or 0), "" if s.errors is None else str(s.errors),
                  "yes" if s.valid else "[red]no[/]", "[green]yes[/]" if s.passed else "[red]no[/]")
    return t
