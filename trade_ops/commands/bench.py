"""`trade-ops bench`: measure a target honestly (open or closed loop, HDR histograms, SLO gates)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services import env
from trade_ops.commands.options import (
    HtmlOpt,
    JsonOpt,
    JunitOpt,
    MetricsOpt,
    RunDirOpt,
    StackOpt,
    order_fields,
)
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]

_LOAD = "Load"
_OUT = "Output"
_WORKERS = "Workers"


def bench(
    target: Annotated[str | None, typer.Argument(
        help="oms | risk | gateway | http (with --url) | null (the built-in null endpoint) | "
             "fill (an order until its fill arrives) | sink (a tick until sink-ticks commits it).",
        show_default=False)] = None,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", "-s", help="Scenario name (scenarios/NAME.toml) or TOML file [default: latency; "
                                 "sink for the sink target].")
    ] = None,
    rate: Annotated[float | None, typer.Option("--rate", "-r", min=0.01, help="Open loop: requests per second"
        " [default: from the scenario].",
                                               rich_help_panel=_LOAD)] = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", min=0.01, help="Seconds to measure"
        " [default: from the scenario].",
                                                   rich_help_panel=_LOAD)] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", min=1,
                                                    help="Closed loop: requests in flight; open loop: "
                                                    "at most this many connections"
                                                        " [default: from the scenario].",
                                                    rich_help_panel=_LOAD)] = None,
    requests: Annotated[int | None, typer.Option("--requests", "-n", min=1, help="Requests to measure"
        " [default: from the scenario].",
                                                 rich_help_panel=_LOAD)] = None,
    warmup: Annotated[float | None, typer.Option("--warmup", min=0, help="Warm-up seconds, excluded"
        " [default: from the scenario].",
                                                 rich_help_panel=_LOAD)] = None,
    warmup_requests: Annotated[int | None, typer.Option(
        "--warmup-requests", min=0, help="Warm-up requests, excluded"
            " [default: from the scenario].", rich_help_panel=_LOAD)] = None,
    model: Annotated[str | None, typer.Option("--model", help="open | closed (default: open when --rate is "
                                              "given).", rich_help_panel=_LOAD)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0.001, help="Per-request timeout, seconds"
        " [default: from the scenario].",
                                                  rich_help_panel=_LOAD)] = None,
    slo: Annotated[list[str] | None, typer.Option("--slo", help="'p99<100ms', 'mean<50ms', 'errors<0.1%', "
                                                  "'rate>=1000/s' (repeatable; added to the scenario's).")
                   ] = None,
    find_max: Annotated[bool, typer.Option("--find-max", help="Search the highest open-loop rate that meets "
                                           "the SLOs.", rich_help_panel=_LOAD)] = False,
    max_lag: Annotated[float | None, typer.Option(
        "--max-lag", min=0.0,
        help="Also call a run invalid when the schedule lag p99 exceeds this many ms [default: "
        "none: a run is invalid when the lag decides an SLO or moves p50/p90/p99 beyond its noise].",
        rich_help_panel=_LOAD)] = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Run the scenario N times; saved runs are "
                                        "then compared run by run as well as interval by interval.",
                                        rich_help_panel=_LOAD)] = 1,
    url: Annotated[str | None, typer.Option("--url", help="Base URL (oms/risk/gateway) or full URL (http) "
                                            "[default: from the running stack].")] = None,
    method: Annotated[str | None, typer.Option("--method", help="http target: method"
        " [default: POST with --body, else GET].")] = None,
    body: Annotated[str | None, typer.Option("--body", help="http target: body template ($i, $run, $side, "
                                             "$uuid) [default: none].")] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", "-H", help="'Name: value'; ${VAR} in a value is read from the environment, so a token "
        "given that way is in no command line (a printed command takes a secret header from an environment "
        "variable).")] = None,
    order: Annotated[list[str] | None, typer.Option(
        "--order", help="oms/risk: an order field as KEY=VALUE (account, symbol, quantity, order_type, "
        "price, time_in_force), over the scenario's [order] table; repeatable [default: none].")] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a target outside loopback.")
                            ] = False,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Measure the generator against the null "
                                            "endpoint first (cached in the run dir).")] = False,
    save: Annotated[str | None, typer.Option("--save", help="Write RUN_DIR/runs/NAME.json and NAME.hgrm; an "
                                             "existing NAME is refused unless --force [default: not saved].",
                                             rich_help_panel=_OUT)] = None,
    force: Annotated[bool, typer.Option("--force", help="With --save: replace a saved run of that name.",
                                        rich_help_panel=_OUT)] = False,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Live line on stderr for longer runs.",
                                       rich_help_panel=_OUT)] = True,
    workers: Annotated[str | None, typer.Option(
        "--workers", help="Split the open-loop schedule over N workers (or 'auto': one per core), merge "
        "their histograms exactly and judge once [default: one process, no workers].",
        rich_help_panel=_WORKERS)] = None,
    runtime: Annotated[str, typer.Option(
        "--runtime", help="With --workers: process (local processes) | docker (containers of the "
        "project's image) | nats (workers started elsewhere join through the stack's NATS: bench worker "
        "--join).",
        rich_help_panel=_WORKERS)] = "process",
    shard: Annotated[str | None, typer.Option(
        "--shard", help="bench worker: this worker's shard i/N (sends requests i, i+N, ...) [default: none].",
        rich_help_panel=_WORKERS)] = None,
    start_at: Annotated[str | None, typer.Option(
        "--start-at", help="bench worker: the run's start (Unix seconds or ISO 8601 with a zone) "
        "[default: the job's].",
        rich_help_panel=_WORKERS)] = None,
    job: Annotated[Path | None, typer.Option(
        "--job", help="bench worker: the job file the coordinator wrote [default: none].",
        rich_help_panel=_WORKERS)] = None,
    out_file: Annotated[Path | None, typer.Option(
        "--out", help="bench worker: write the result there [default: one JSON line on stdout].",
        rich_help_panel=_WORKERS)] = None,
    join: Annotated[str | None, typer.Option(
        "--join", help="bench worker: take the job and the start time from a coordinator through this "
        f"NATS server (nats://HOST:4222), as the bench user: {env.setting_var('nats_password')} holds "
        "its password [default: none].", rich_help_panel=_WORKERS)] = None,
    json_out: JsonOpt = False,
    junit: JunitOpt = None,
    metrics: MetricsOpt = None,
    html: HtmlOpt = None,
    run_dir: RunDirOpt = None,
    stack: StackOpt = None,
) -> None:
    """Measure a target honestly: open or closed loop, HDR histograms, SLO gates, saved runs.

    Flags such as -c, -n, --rate and -d override the scenario's load and keep its SLOs;
    every run also carries errors<1% unless an error SLO is set.

    fill and sink are timed until their answer arrives on the bus, on the stack trade-ops
    started: fill sends the oms target's MARKET orders and waits for each one's final fill
    (order to fill through risk, exeq and the venue: `up --only oms,exeq,live-gateway,gateway`);
    sink publishes ticks and waits until sink-ticks has committed each to the lake and
    acked it (`up --only sink-ticks`: its ticks name the symbol ZZBENCH).

    Exit codes: 0 pass; 1 an SLO breached, errors, no successful request, or every order
    rejected; 2 usage; 3 could not run; 4 the measurement is not valid (the generator's lag
    could change the verdict or the figures; they are printed and saved, marked);
    130 interrupted (Ctrl-C; the summary so far is printed).
    """
    args = dict(locals())  # the flags, passed on as they are
    from trade_ops import console as out
    from trade_ops.commands.json_errors import json_errors
    from trade_ops.errors import ExitCode

    if json_out:
        out.use_stderr()
    try:
        with json_errors(json_out):
            _bench(**args)
    except KeyboardInterrupt:  # outside a load (start-up, idle CPU sample): nothing was measured yet
        message = "interrupted (Ctrl-C) before anything was measured"
        out.err_console.print(f"[bold yellow]{message}[/]")
        if json_out:
            out.print_json({"status": "interrupted", "exit_code": int(ExitCode.INTERRUPTED),
                            "message": message})
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def _bench(target: str | None, scenario: str | None, rate: float | None, duration: float | None,
           concurrency: int | None, requests: int | None, warmup: float | None, warmup_requests: int | None,
           model: str | None, timeout: float | None, slo: list[str] | None, find_max: bool,
           max_lag: float | None, repeat: int, url: str | None, method: str | None, body: str | None,
           header: list[str] | None, order: list[str] | None, allow_remote: bool, calibrate: bool,
           save: str | None, force: bool, live: bool, workers: str | None, runtime: str, shard: str | None,
           start_at: str | None, job: Path | None, out_file: Path | None, join: str | None, json_out: bool,
           junit: Path | None, metrics: Path | None, html: Path | None, run_dir: Path | None,
           stack: Path | None) -> None:
    import msgspec

    from trade_ops import console as out
    from trade_ops.bench import calibrate as cal
    from trade_ops.bench.runner import BenchRequest, run_bench, show
    from trade_ops.commands import bench_workers
    from trade_ops.context import Context
    from trade_ops.errors import ExitCode, UsageError
    from trade_ops.render.publish import publish_bench

    if target == "worker":
        raise typer.Exit(bench_workers.worker(shard, start_at, job, out_file, join))
    bench_workers.refuse_worker_flags(shard=shard, start_at=start_at, job=job, out=out_file, join=join)
    ctx = Context.resolve(run_dir, stack)
    if target is None:
        if not calibrate:
            raise UsageError("name a target (oms, risk, gateway, http, null, fill, sink) or pass --calibrate")
        out.console.print("calibrating against the null endpoint (overhead, then max rate) ...")
        result = cal.calibrate(full=True)
        cal.save_cache(ctx.run_dir, result)
        if json_out:
            out.print_json(out.envelope(msgspec.to_builtins(result), ExitCode.OK))
        else:
            out.console.print(f"generator overhead p50 {result.overhead_p50_ms:.3f} ms, "
                              f"p99 {result.overhead_p99_ms:.3f} ms; max open-loop rate "
                              f"{result.max_rate or 0:,.0f}/s (cached in {ctx.run_dir.path})")
        return
    headers: dict[str, str] = {}
    for h in header or []:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {h!r} must be 'Name: value'")
        headers[name.strip()] = value.strip()
    overrides = {"rate": rate, "duration_s": duration, "concurrency": concurrency, "requests": requests,
                 "warmup_s": warmup, "warmup_requests": warmup_requests, "model": model, "timeout_s": timeout,
                 "slo": slo or [], "find_max": find_max or None, "max_lag_ms": max_lag,
                 "order": order_fields(order or []) or None}
    if force and not save:
        raise UsageError("--force replaces a saved run: it needs --save NAME")
    req = BenchRequest(target, scenario, overrides, url, method, body, headers, allow_remote, ctx,
                       save, calibrate=calibrate, live=live, repeat=repeat, force=force)
    outcome = (run_bench(req, out.console, out.err_console) if workers is None
               else bench_workers.coordinate(req, workers, runtime, out.err_console))
    if json_out:
        out.print_json(outcome.result.to_json())
    else:
        if workers is not None:
            bench_workers.show(outcome.result, out.console)
        show(outcome, out.console)
    for path in publish_bench(outcome, junit=junit, metrics=metrics, html=html):
        out.console.print(f"[dim]wrote {path}[/]")
    if outcome.exit_code != ExitCode.OK:
        raise typer.Exit(int(outcome.exit_code))


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=examples(
        ("trade-ops bench oms", "the default scenario against the running stack"),
        ("trade-ops bench oms --rate 200 --duration 20", "open loop at 200 orders/s"),
        ("trade-ops bench risk --slo 'p99<5ms' --save after", "a gate, and a saved run to compare"),
        ("trade-ops bench fill -c 1 -n 200", "order to fill, one order at a time"),
        ("trade-ops bench sink --rate 1000 -d 10", "ticks into the lake at 1000/s, each until committed"),
        ("trade-ops bench oms --rate 400 -d 20 --workers 2", "one schedule on two worker processes, merged"),
    ))(cli_errors(bench))
