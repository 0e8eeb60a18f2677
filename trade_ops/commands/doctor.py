"""`trade-ops doctor`: is every part healthy; if not, the root cause and the fix."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from trade_ops import console as out
from trade_ops.commands.options import (
    JsonOpt,
    JunitOpt,
    MetricsOpt,
    OrderOpt,
    RunDirOpt,
    StackOpt,
    order_fields,
)
from trade_ops.commands.starting import BaseImageOpt, OfflineImagesOpt, OffsetOpt, RuntimeOpt
from trade_ops.errors import UsageError
from trade_ops.helptext import examples
from trade_ops.render.publish import publish_doctor
from trade_ops.report.status import STATUS_REPORT

if TYPE_CHECKING:
    from trade_ops.context import Context
    from trade_ops.doctor.model import DoctorReport
    from trade_ops.doctor.target import Explicit

__all__ = ["register"]

TRADE_EVERY_S = 60.0


def doctor(
    up: Annotated[bool, typer.Option(
        "--up", help="Start the stack first, as `trade-ops up` does (with --port-offset, --runtime, "
                     "--base-image, --offline-images as up takes them).")] = False,
    json_: JsonOpt = False,
    report: Annotated[str | None, typer.Option(
        "--report", metavar="PATH", help="Where to write STATUS_REPORT.md "
                                         "[default: RUN_DIR/reports/STATUS_REPORT.md; none with --json].")]
        = None,
    no_report: Annotated[bool, typer.Option(
        "--no-report", help="Do not write STATUS_REPORT.md.")] = False,
    watch: Annotated[float | None, typer.Option(
        "--watch", metavar="S", min=0.5, help="Re-run every S seconds and show what changed"
            " [default: run once].")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the gate too.")] = False,
    trade: Annotated[bool | None, typer.Option(
        "--trade/--no-trade", show_default="only on a stack trade-ops started",
        help="The order round trip places a small MARKET buy and the same sell on the `doctor` account "
             "(at most once a minute with --watch). --trade allows it on any target; --no-trade "
             "skips it everywhere.")] = None,
    order: OrderOpt = None,
    run_dir: RunDirOpt = None,
    stack: StackOpt = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", metavar="S", min=0.05, help="Timeout of each probe, in seconds.")] = 1.0,
    url: Annotated[list[str] | None, typer.Option(
        "--url", metavar="SVC=URL", help="Where a service answers (repeatable). With --url, --valkey, "
        "--nats, --nats-monitor or --lake, doctor examines exactly what they name, nothing else.")]
        = None,
    valkey: Annotated[str | None, typer.Option(
        "--valkey", metavar="URL", show_default="not examined",
        help="Examine the valkey/redis at redis://host:port.")] = None,
    nats: Annotated[str | None, typer.Option(
        "--nats", metavar="URL", show_default="not examined",
        help="Examine the NATS server at nats://host:port.")] = None,
    nats_monitor: Annotated[str | None, typer.Option(
        "--nats-monitor", metavar="URL", show_default="not examined",
        help="Its monitoring endpoint, http://host:8222.")] = None,
    lake: Annotated[str | None, typer.Option(
        "--lake", metavar="URI", show_default="not examined",
        help="Examine the Delta lake at a directory or s3:// URI.")] = None,
    reconcile_window: Annotated[int, typer.Option(
        "--reconcile-window", metavar="N", min=0,
        help="Reconcile orders, fills, positions and the lake over the last N fills (0: skip).")] = 10_000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the details of passing checks too.")]
        = False,
    compose: Annotated[Path | None, typer.Option(
        "--compose", help="compose.yaml whose healthchecks to verify"
            " [default: ./compose.yaml, if there].")] = None,
    junit: JunitOpt = None,
    metrics: MetricsOpt = None,
    serve: Annotated[str | None, typer.Option(
        "--serve", metavar="ADDR", show_default="not served",
        help="Serve the latest result as Prometheus metrics on http://ADDR/metrics (HOST:PORT or :PORT), "
             "running doctor read-only (never trading) when scraped, at most once per --interval.")] = None,
    interval: Annotated[float, typer.Option(
        "--interval", metavar="S", min=1.0, help="With --serve: the most often doctor runs.")] = 30.0,
    wire_window: Annotated[float, typer.Option(
        "--wire-window", metavar="S", min=0.0, max=60.0,
        help="On a deployment trade-ops did not start, sample its NATS traffic for S seconds to find "
             "subjects nobody hears and subscriptions that hear nothing (0: skip).")] = 2.0,
    port_offset: OffsetOpt = None,
    runtime: RuntimeOpt = None,
    base_image: BaseImageOpt = None,
    offline_images: OfflineImagesOpt = False,
) -> None:
    """Diagnose the stack: every problem, its root cause and its fix, in about a second."""
    from trade_ops.context import Context
    from trade_ops.doctor.target import Explicit, parse_urls

    if json_:
        out.use_stderr()
    if watch is not None and json_:
        raise UsageError("--watch and --json do not combine: --json prints one document")
    if serve is not None and (watch is not None or json_ or up or trade or junit or metrics):
        raise UsageError("--serve runs doctor read-only when scraped and serves its metrics: it does not "
                         "combine with --watch, --json, --up, --trade, --junit or --metrics")
    if compose is not None and not compose.is_file():
        raise UsageError(f"--compose {compose}: no such file")
    flags = Explicit(parse_urls(url or []), valkey, nats, nats_monitor, lake)
    # --port-offset moves the stack --up starts, or one that no state here records.
    ctx = Context.resolve(run_dir, stack)
    if port_offset is not None and (up or not ctx.run_dir.has_state()):
        ctx = Context.resolve(run_dir, stack, port_offset=port_offset)
    # --json prints the document and writes nothing else, unless --report names a file.
    quiet = no_report or (json_ and report is None)
    report_path = None if quiet else (report or str(ctx.run_dir.reports / STATUS_REPORT))
    startup_s = _start(ctx, runtime, base_image, offline_images, json_) if up else None
    named = flags or compose is not None  # a compose project named is something to examine too
    if not up and not named and not ctx.running() and not any(c.url for c in ctx.stack.services):
        raise ctx.run_dir.no_stack_error()  # probe nothing at default ports that nobody asked for
    if serve is not None:
        _serve(serve, interval,
               lambda: _run(ctx, flags, timeout, compose, strict, False, reconcile_window, wire_window))

    fields = order_fields(order or [])
    doc = _once(ctx, flags, timeout, compose, strict, report_path, json_, verbose, None, trade,
                reconcile_window, startup_s, wire_window, fields)
    traded_at, interrupted = time.monotonic(), False
    while watch is not None:
        try:
            time.sleep(watch)
            # A watch trades at most once a minute: the other runs are read-only.
            again = trade is not False and time.monotonic() - traded_at >= TRADE_EVERY_S
            doc = _once(ctx, flags, timeout, compose, strict, report_path, json_, verbose, doc,
                        trade if again else False, reconcile_window, wire_window=wire_window, order=fields,
                        throttled=not again and trade is not False)
            traded_at = time.monotonic() if again else traded_at
        except KeyboardInterrupt:  # Ctrl-C ends a watch: the last run is published, then 130
            interrupted = True
            break
    for path in publish_doctor(doc, junit=junit, metrics=metrics):
        out.console.print(f"[dim]wrote {path}[/]")
    if interrupted:
        out.interrupted_quietly()
    raise typer.Exit(doc.exit_code)


def _run(ctx: Context, flags: Explicit, timeout: float, compose: Path | None, strict: bool,
         trade: bool | None, window: int, wire_window: float = 2.0,
         order: dict[str, Any] | None = None) -> DoctorReport:
    from trade_ops.doctor import build_target, run_doctor

    target = build_target(ctx, timeout=timeout, compose=compose, flags=flags)
    target.trade, target.reconcile_window, target.wire_window = trade, window, wire_window
    target.order = dict(order or {})
    return run_doctor(target, strict=strict)


def _serve(addr: str, interval: float, run: Callable[[], DoctorReport]) -> NoReturn:
    """Serve the latest result on /metrics until Ctrl-C (exit 130)."""
    from trade_ops.doctor.exporter import DoctorExporter
    from trade_ops.errors import ExitCode
    from trade_ops.render.prometheus import doctor_families, serve_metrics

    host, _, port = addr.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--serve {addr!r} must be HOST:PORT or :PORT, for example 127.0.0.1:9464")
    exporter = DoctorExporter(run, interval)
    server, thread = serve_metrics(host.strip("[]") or "0.0.0.0", int(port),
                                   lambda: doctor_families(exporter.latest(), exporter.runs, exporter.ran_at))
    out.console.print(f"serving doctor metrics on http://{host or '0.0.0.0'}:{server.server_port}/metrics "
                      f"(doctor runs read-only when scraped, at most every {interval:g} s; Ctrl-C stops)",
                      markup=False, soft_wrap=True)
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
    raise typer.Exit(int(ExitCode.INTERRUPTED))


def _once(ctx: Context, flags: Explicit, timeout: float, compose: Path | None,
          strict: bool, report: str | None, json_: bool, verbose: bool,
          previous: DoctorReport | None, trade: bool | None = None,
          window: int = 10_000, startup_s: float | None = None, wire_window: float = 2.0,
          order: dict[str, Any] | None = None, throttled: bool = False) -> DoctorReport:
    """One doctor run: check, save doctor-last.json, write the report, show it (or what changed)."""
    from trade_ops.doctor import render_status_report, save_last
    from trade_ops.doctor.render import changes, render, summary_line, verdict

    doc = _run(ctx, flags, timeout, compose, strict, trade, window, wire_window, order)
    if startup_s is not None:  # `--up`: the start-up is reported beside the doctor's own time
        doc.startup_ms = round(startup_s * 1000, 1)
    if ctx.run_dir.path.is_dir():  # never create a run dir here just to keep a result
        save_last(doc, ctx.run_dir)
    if report:
        path = Path(report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_status_report(doc))
    if json_:
        out.print_json(doc.to_json())
    elif previous is None:
        render(doc, out.console, verbose=verbose)
        if startup_s is not None:
            out.console.print(f"[dim]the stack took {startup_s:.2f} s to start and get its first data "
                              f"flowing; the doctor {doc.duration_ms / 1000:.2f} s[/]")
        if report:
            out.console.print(f"[dim]wrote {report}[/]")
    else:
        if throttled:
            doc = last_trade_stands(doc, previous)
        moved = changes(previous, doc)
        out.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {verdict(doc)} · {summary_line(doc)}"
                          + ("" if moved else " [dim](no change)[/]"), emoji=False)
        for line in moved:
            out.console.print(f"    {line}", markup=False, emoji=False)
    return doc


TRADED_CHECKS = ("oms order round trip", "positions and P&L reflect the fill")


def last_trade_stands(doc: DoctorReport, previous: DoctorReport) -> DoctorReport:
    """A watch's run that did not trade (it trades at most once a minute) keeps the last
    trade's checks: --watch reports changes of the stack, not of its own throttling (it
    reported "oms order round trip: pass -> skip" and back every cycle)."""
    import msgspec

    kept = {c.name: c for c in previous.checks if c.name in TRADED_CHECKS}
    return msgspec.structs.replace(doc, checks=[kept.get(c.name, c) if c.name in TRADED_CHECKS else c
                                                for c in doc.checks])


def _start(ctx: Context, runtime: str | None, base_image: str | None, offline_images: bool,
           json_: bool) -> float:
    """Start the stack as `up` does (the same library call, the runtime chosen the same way, the
    operator token shown the first time), then wait for the first data; the seconds."""
    from trade_ops.commands.starting import choose_runtime, show_token, start_with_progress
    from trade_ops.doctor.check_dataflow import wait_first_write

    started = time.monotonic()
    chosen = choose_runtime(ctx.run_dir, runtime, base_image, offline_images)
    show_token(start_with_progress(ctx.run_dir, ctx.stack, chosen), on_stderr=json_)
    if not out.err_console.is_terminal:
        out.err_console.print("waiting for the first data to flow ...")
    with out.err_console.status("waiting for the first data to flow ..."):
        wait_first_write(ctx.stack)
    return time.monotonic() - started


def register(app: typer.Typer) -> None:
    app.command("doctor", epilog=examples(
        ("trade-ops doctor --up", "start the stack here, then check it"),
        ("trade-ops doctor", "check the running stack found from here"),
        ("trade-ops doctor --url oms=http://10.0.0.5:8099", "check a service trade-ops did not start"),
    ))(out.cli_errors(doctor))
