"""`trade-ops bench`: measure a target honestly (open or closed loop, HDR histograms, SLO gates)."""

from __future__ import annotations

from typing import Annotated

import typer

from trade_ops.commands.options import JsonOpt, RunDirOpt, StackOpt
from trade_ops.console import cli_errors
from trade_ops.helptext import examples

__all__ = ["register"]

_LOAD = "Load"
_OUT = "Output"


def bench(
    target: Annotated[str | None, typer.Argument(
        help="oms | risk | gateway | http (with --url) | null (the built-in null endpoint).",
        show_default=False)] = None,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", "-s", help="Scenario name (scenarios/NAME.toml) or TOML file [default: latency].")
    ] = None,
    rate: Annotated[float | None, typer.Option("--rate", "-r", help="Open loop: requests per second"
        " [default: from the scenario].",
                                               rich_help_panel=_LOAD)] = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Seconds to measure"
        " [default: from the scenario].",
                                                   rich_help_panel=_LOAD)] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Closed loop: requests in "
                                                    "flight; open loop: at most this many connections"
                                                        " [default: from the scenario].",
                                                    rich_help_panel=_LOAD)] = None,
    requests: Annotated[int | None, typer.Option("--requests", "-n", help="Requests to measure"
        " [default: from the scenario].",
                                                 rich_help_panel=_LOAD)] = None,
    warmup: Annotated[float | None, typer.Option("--warmup", help="Warm-up seconds, excluded"
        " [default: from the scenario].",
                                                 rich_help_panel=_LOAD)] = None,
    warmup_requests: Annotated[int | None, typer.Option(
        "--warmup-requests", help="Warm-up requests, excluded"
            " [default: from the scenario].", rich_help_panel=_LOAD)] = None,
    model: Annotated[str | None, typer.Option("--model", help="open | closed (default: open when --rate is "
                                              "given).", rich_help_panel=_LOAD)] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Per-request timeout, seconds"
        " [default: from the scenario].",
                                                  rich_help_panel=_LOAD)] = None,
    slo: Annotated[list[str] | None, typer.Option("--slo", help="'p99<100ms', 'mean<50ms', 'errors<0.1%', "
                                                  "'rate>=1000/s' (repeatable; added to the scenario's).")
                   ] = None,
    find_max: Annotated[bool, typer.Option("--find-max", help="Search the highest open-loop rate that meets "
                                           "the SLOs.", rich_help_panel=_LOAD)] = False,
    max_lag: Annotated[float | None, typer.Option("--max-lag", help="Schedule lag p99 (ms) above which a run "
                                                  "is invalid [default: 10].", rich_help_panel=_LOAD)] = None,
    url: Annotated[str | None, typer.Option("--url", help="Base URL (oms/risk/gateway) or full URL (http) "
                                            "[default: from the running stack].")] = None,
    method: Annotated[str | None, typer.Option("--method", help="http target: method"
        " [default: POST with --body, else GET].")] = None,
    body: Annotated[str | None, typer.Option("--body", help="http target: body template ($i, $run, $side, "
                                             "$uuid) [default: none].")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="http target: 'Name: value'.")
                      ] = None,
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Allow a target outside loopback.")
                            ] = False,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Measure the generator against the null "
                                            "endpoint first (cached in the run dir).")] = False,
    save: Annotated[str | None, typer.Option("--save", help="Write reports/runs/NAME.json and NAME.hgrm"
        " [default: not saved].",
                                             rich_help_panel=_OUT)] = None,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Live line on stderr for longer runs.",
                                       rich_help_panel=_OUT)] = True,
    json_out: JsonOpt = False,
    run_dir: RunDirOpt = None,
    stack: StackOpt = None,
) -> None:
    """Measure a target honestly: open or closed loop, HDR histograms, SLO gates, saved runs."""
    from trade_ops import console as out
    from trade_ops.bench import calibrate as cal
    from trade_ops.bench.runner import BenchRequest, run_bench, show
    from trade_ops.errors import ExitCode, UsageError
    from trade_ops.rundir import RunDir

    if json_out:
        out.use_stderr()
    rd = RunDir(run_dir).path
    if target is None:
        if not calibrate:
            raise UsageError("name a target (oms, risk, gateway, http, null) or pass --calibrate")
        out.console.print("calibrating against the null endpoint (overhead, then max rate) ...")
        result = cal.calibrate(full=True)
        cal.save_cache(rd, result)
        if json_out:
            out.print_json(result)
        else:
            out.console.print(f"generator overhead p50 {result['overhead_p50_ms']:.3f} ms, "
                              f"p99 {result['overhead_p99_ms']:.3f} ms; max open-loop rate "
                              f"{result['max_rate'] or 0:,.0f}/s (cached in {rd})")
        return
    headers: dict[str, str] = {}
    for h in header or []:
        name, sep, value = h.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {h!r} must be 'Name: value'")
        headers[name.strip()] = value.strip()
    overrides = {"rate": rate, "duration_s": duration, "concurrency": concurrency, "requests": requests,
                 "warmup_s": warmup, "warmup_requests": warmup_requests, "model": model, "timeout_s": timeout,
                 "slo": slo or [], "find_max": find_max or None, "max_lag_ms": max_lag}
    req = BenchRequest(target, scenario, overrides, url, method, body, headers, allow_remote, rd, stack,
                       save, calibrate=calibrate, live=live)
    outcome = run_bench(req, out.console, out.err_console)
    if json_out:
        out.print_json(outcome.result)
    else:
        show(outcome, out.console)
    if outcome.exit_code != ExitCode.OK:
        raise typer.Exit(int(outcome.exit_code))


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=examples(
        ("trade-ops bench oms", "the default scenario against the running stack"),
        ("trade-ops bench oms --rate 200 --duration 20", "open loop at 200 orders/s"),
        ("trade-ops bench risk --slo 'p99<5ms' --save after", "a gate, and a saved run to compare"),
    ))(cli_errors(bench))
