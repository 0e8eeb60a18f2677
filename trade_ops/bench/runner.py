"""One bench run end to end, as the CLI asks for it: scenario and flags -> target ->
(calibration) -> load or find-max -> analysis, SLO verdicts -> saved run."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from trade_ops.bench import calibrate as cal
from trade_ops.bench.client import probe
from trade_ops.bench.cpu import CpuMeter
from trade_ops.bench.findmax import find_max
from trade_ops.bench.loadgen import LoadSpec, run_load
from trade_ops.bench.null_server import NullServer
from trade_ops.bench.render import LiveLine, find_max_table, result_table, verdict_lines
from trade_ops.bench.results import DEFAULT_MAX_LAG_MS, Analysis, analyse
from trade_ops.bench.runs import RUNS_DIR, build_run, check_name, save_run
from trade_ops.bench.scenario import Scenario, resolve
from trade_ops.bench.slo import Slo, evaluate, parse_slos
from trade_ops.bench.targets import Target, make_target
from trade_ops.errors import ExitCode, UsageError

__all__ = ["BenchOutcome", "BenchRequest", "run_bench", "show"]

LIVE_AFTER_S = 3.0


@dataclass
class BenchRequest:
    target: str
    scenario: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # scenario keys given as flags
    url: str | None = None
    method: str | None = None
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    allow_remote: bool = False
    run_dir: Path = Path(".trade-ops")
    stack_file: Path | None = None
    save: str | None = None
    runs_dir: Path = RUNS_DIR
    calibrate: bool = False
    live: bool = True


@dataclass
class BenchOutcome:
    result: dict[str, Any]
    analysis: Analysis
    exit_code: ExitCode
    saved: tuple[Path, Path] | None = None
    calibration: dict[str, Any] | None = None


def _spec(d: dict[str, Any], rate: float | None = None, duration_s: float | None = None) -> LoadSpec:
    model = "open" if rate else d["model"]
    return LoadSpec(
        model=model, rate=rate or d.get("rate"), duration_s=duration_s or d.get("duration_s"),
        concurrency=int(d.get("concurrency", 64 if model == "open" else 1)),
        requests=None if duration_s else d.get("requests"),
        warmup_requests=int(d.get("warmup_requests", 0)), warmup_s=float(d.get("warmup_s", 0.0)),
        timeout_s=float(d.get("timeout_s", 5.0)), max_time_s=float(d.get("max_time_s", 900.0)))


def _settings(target: Target, spec: LoadSpec, d: dict[str, Any]) -> dict[str, Any]:
    return {"target": target.name, "url": target.url, "model": spec.model,
            "rate": spec.rate if spec.model == "open" else None, "duration_s": spec.duration_s,
            "concurrency": spec.concurrency, "requests": spec.requests,
            "warmup": {"requests": spec.warmup_requests, "seconds": spec.warmup_s},
            "timeout_s": spec.timeout_s, "max_lag_ms": d.get("max_lag_ms", DEFAULT_MAX_LAG_MS),
            "interval_s": d.get("interval_s", 1.0), "find_max": bool(d.get("find_max")),
            "request": target.describe}


def _base_url(req: BenchRequest) -> str:
    if req.url:
        return req.url
    if req.target == "http":
        raise UsageError("the http target needs --url")
    from trade_ops.rundir import RunDir

    return RunDir(req.run_dir).stack(req.stack_file)[req.target].base_url


def _measure(target: Target, spec: LoadSpec, d: dict[str, Any], slos: list[Slo], console: Console,
             live: bool, label: str, cpu: CpuMeter | None = None) -> Analysis:
    if cpu:
        cpu.start()
    if live and spec.expected_s() > LIVE_AFTER_S and console.is_terminal:
        with LiveLine(console, label) as line:
            raw = run_load(target, spec, on_tick=line.tick)
    else:
        raw = run_load(target, spec)
    a = analyse(raw, spec, interval_s=float(d.get("interval_s", 1.0)),
                max_lag_ms=float(d.get("max_lag_ms", DEFAULT_MAX_LAG_MS)))
    a.result["cpu"] = cpu.stop(len(raw)) if cpu else None  # warm-up included: it costs CPU too
    a.result["slo"] = evaluate(slos, a.result)
    a.result["passed"] = a.result["valid"] and all(c["passed"] for c in a.result["slo"])
    return a


def _find_max(target: Target, sc: Scenario, slos: list[Slo], console: Console,
              live: bool) -> tuple[Analysis, dict[str, Any], LoadSpec]:
    d = sc.definition
    if not slos:
        raise UsageError("--find-max needs at least one SLO (--slo 'p99<50ms', or a scenario with slo)")
    step_s = float(d.get("find_max_step_s", 5.0))
    runs: dict[float, tuple[Analysis, LoadSpec]] = {}

    def measure(rate: float) -> tuple[bool, dict[str, Any]]:
        spec = _spec(d, rate=rate, duration_s=step_s)
        spec.warmup_s, spec.warmup_requests = min(spec.warmup_s or 1.0, 1.0), 0
        a = _measure(target, spec, d, slos, console, live, f"find-max {rate:,.0f}/s")
        r = a.result
        kept_up = r["rate"] >= 0.9 * rate
        passed = r["passed"] and kept_up
        runs[round(rate, 2)] = (a, spec)
        console.print(f"  {rate:>9,.0f}/s  achieved {r['rate']:>9,.0f}/s  "
                      f"p50 {r['latency_ms']['p50']:.3f} ms  "
                      f"p99 {r['latency_ms']['p99']:.3f} ms  errors {r['errors']}  "
                      + ("[green]pass[/]" if passed else "[red]fail[/]")
                      + ("" if r["valid"] else "  (invalid: generator behind)"))
        return passed, {"valid": r["valid"], "rate_achieved": r["rate"], "p50_ms": r["latency_ms"]["p50"],
                        "p99_ms": r["latency_ms"]["p99"], "lag_p99_ms": r["schedule_lag_ms"]["p99"],
                        "errors": r["errors"]}

    console.print(f"find-max: {target.url}, steps of {step_s:g} s, SLOs {', '.join(s.expr for s in slos)}")
    fm = find_max(measure, float(d.get("find_max_start", d.get("rate") or 100.0)),
                  float(d.get("find_max_limit", 20000.0)))
    best = fm.max_rate if fm.max_rate is not None else fm.steps[-1].rate
    a, spec = runs[best]
    a.result["passed"] = fm.max_rate is not None
    return a, fm.to_json(), spec


def run_bench(req: BenchRequest, console: Console, live_console: Console | None = None) -> BenchOutcome:
    sc = resolve(req.scenario, req.overrides)
    d = sc.definition
    slos = parse_slos(list(d.get("slo", [])))
    if req.save:
        check_name(req.save)
    with contextlib.ExitStack() as stack:
        calibration = None
        if req.calibrate:
            console.print("calibrating against the null endpoint (overhead, then max rate) ...")
            calibration = cal.calibrate(full=True)
            cal.save_cache(req.run_dir, calibration)
        own_null = req.target == "null" and not req.url
        base = stack.enter_context(NullServer()) if own_null else _base_url(req)
        target = make_target(req.target, base, method=req.method, body=req.body, headers=req.headers,
                             order=d.get("order"), allow_remote=req.allow_remote)
        probe(target.host, target.port)
        live = req.live
        lc = live_console or console
        if d.get("find_max"):
            analysis, fm, spec = _find_max(target, sc, slos, lc, live)
        else:
            spec = _spec(d)
            spec.check()
            # CPU per request when the target is the stack trade-ops started (not --url).
            cpu = None if req.url or own_null else CpuMeter.for_run_dir(req.run_dir)
            analysis = _measure(target, spec, d, slos, lc, live, f"bench {req.target}", cpu)
            fm = None
    r = analysis.result
    r.update({"target": target.name, "url": target.url, "scenario": sc.name, "scenario_hash": sc.hash})
    if fm is not None:
        r["find_max"] = fm
    saved = None
    if req.save:
        calibration = calibration or cal.calibration_for_save(req.run_dir)
        cal_doc = {k: calibration.get(k) for k in ("overhead_p50_ms", "overhead_p99_ms", "max_rate")}
        doc = build_run(req.save, sc.to_json(), _settings(target, spec, d), cal_doc, r, analysis)
        saved = save_run(doc, analysis, req.runs_dir)
    return BenchOutcome(r, analysis, ExitCode.OK if r["passed"] else ExitCode.FAILED, saved, calibration)


def show(outcome: BenchOutcome, console: Console) -> None:
    r = outcome.result
    if "find_max" in r:
        fm = r["find_max"]
        console.print(find_max_table(fm))
        if fm["max_rate"] is None:
            console.print("[bold red]find-max:[/] no rate met the SLOs")
        else:
            console.print(f"[bold]find-max: {fm['max_rate']:,.0f} req/s[/] meets the SLOs "
                          f"(limited by {fm['limited_by']})")
    model = "open loop, latency from intended start" if r["corrected"] else "closed loop"
    console.print(result_table(r, f"{r['target']} {r['url']} ({r['scenario']}, {model})"))
    for line in verdict_lines(r, outcome.calibration):
        console.print(line)
    if outcome.saved:
        console.print(f"saved {outcome.saved[0]} and {outcome.saved[1]}")
    console.print("[green]PASS[/]" if r["passed"] else "[bold red]FAIL[/]")
