"""One bench run end to end, as the CLI asks for it: scenario and flags -> target ->
(calibration) -> load (N times with --repeat) or find-max -> analysis, verdict -> saved run."""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from services import env
from trade_ops import identity, runtime
from trade_ops.bench import calibrate as cal
from trade_ops.bench.client import probe
from trade_ops.bench.cpu import CpuMeter
from trade_ops.bench.findmax import find_max
from trade_ops.bench.loadgen import LoadSpec, run_load
from trade_ops.bench.null_server import NullServer
from trade_ops.bench.render import LiveLine, find_max_table, result_table, verdict_lines
from trade_ops.bench.results import Analysis, analyse, merge
from trade_ops.bench.runs import (
    build_run,
    conditions_between,
    host_conditions,
    refuse_existing,
    save_run,
)
from trade_ops.bench.scenario import Scenario, default_scenario, resolve
from trade_ops.bench.slo import Slo, parse_slos
from trade_ops.bench.target import Target
from trade_ops.bench.targets import BUS_TARGETS, TARGETS, contract_for, make_target
from trade_ops.bench.verdict import DEFAULT_ERROR_SLO, judge, with_default_gates
from trade_ops.context import Context
from trade_ops.errors import ExitCode, UsageError
from trade_ops.savedruns import BenchResult, Calibration, FindMax, RunSettings, Step, Warmup

if TYPE_CHECKING:
    from trade_ops.bench.bus_targets import NatsAccess

__all__ = ["BenchOutcome", "BenchRequest", "bench_command", "contract_table", "expand_headers",
           "header_env_var", "load_spec", "run_bench", "secret_header_vars", "show"]

LIVE_AFTER_S = 3.0
MAX_REPEAT = 100


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
    ctx: Context = field(default_factory=Context.resolve)  # the stack benched, when not --url
    save: str | None = None
    runs_dir: Path | None = None  # default: the run directory's runs/
    calibrate: bool = False
    live: bool = True
    repeat: int = 1
    force: bool = False


@dataclass
class BenchOutcome:
    result: BenchResult
    analysis: Analysis
    exit_code: ExitCode
    saved: tuple[Path, Path] | None = None
    calibration: Calibration | None = None


SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
_FLAGS = (("rate", "--rate"), ("duration_s", "--duration"), ("concurrency", "--concurrency"),
          ("requests", "--requests"), ("warmup_s", "--warmup"), ("warmup_requests", "--warmup-requests"),
          ("model", "--model"), ("timeout_s", "--timeout"), ("max_lag_ms", "--max-lag"))


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def header_env_var(name: str) -> str:
    """Where a printed command takes a secret header from: TRADE_OPS_HEADER_AUTHORIZATION."""
    return env.header_var(name)


def expand_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header values with `${NAME}` filled from the environment: how a secret is given
    without being written in a command line, a report or a saved run."""
    out = {}
    for name, value in headers.items():
        for var in _ENV_REF.findall(value):
            if var not in os.environ:
                raise UsageError(f"--header {name!r} takes ${{{var}}} from the environment; it is not set",
                                 detail=f"set {var} to the header's value (export {var}='Bearer ...') "
                                        "and run the command again")
        out[name] = _ENV_REF.sub(lambda m: os.environ[m.group(1)], value)
    return out


def secret_header_vars(req: BenchRequest) -> dict[str, str]:
    """The environment variables the printed command reads secret headers from, and what each holds."""
    return {var: f"the {name} header's value" for name, value in req.headers.items()
            if name.lower() in SECRET_HEADERS for var in (_ENV_REF.findall(value) or [header_env_var(name)])}


def bench_command(req: BenchRequest) -> str:
    """The command that makes this run again, as it runs (the saved run is replaced: --force)."""
    argv = ["trade-ops", "bench", req.target, "--scenario", req.scenario or default_scenario(req.target)]
    o = req.overrides
    for key, flag in _FLAGS:
        if o.get(key) is not None:
            argv += [flag, f"{o[key]:g}" if isinstance(o[key], float) else str(o[key])]
    for expr in o.get("slo") or []:
        argv += ["--slo", expr]
    if o.get("find_max"):
        argv.append("--find-max")
    if req.url:
        argv += ["--url", req.url]
    if req.method:
        argv += ["--method", req.method]
    if req.body is not None:
        argv += ["--body", req.body]
    for name, value in req.headers.items():
        # a credential is never kept with a run (saved runs and reports are shared): the command
        # takes it from the environment (bench fills ${NAME} itself; the quotes keep the shell out)
        if name.lower() in SECRET_HEADERS and not _ENV_REF.search(value):
            value = f"${{{header_env_var(name)}}}"
        argv += ["--header", f"{name}: {value}"]
    if req.allow_remote:
        argv.append("--allow-remote")
    for key, value in (o.get("order") or {}).items():
        argv += ["--order", f"{key}={value}"]
    if req.repeat > 1:
        argv += ["--repeat", str(req.repeat)]
    if req.save:
        argv += ["--save", req.save, "--force"]
    return shlex.join(argv)


def load_spec(d: dict[str, Any], rate: float | None = None, duration_s: float | None = None) -> LoadSpec:
    model = "open" if rate else d["model"]
    return LoadSpec(
        model=model, rate=rate or d.get("rate"), duration_s=duration_s or d.get("duration_s"),
        concurrency=int(d.get("concurrency", 64 if model == "open" else 1)),
        requests=None if duration_s else d.get("requests"),
        warmup_requests=int(d.get("warmup_requests", 0)), warmup_s=float(d.get("warmup_s", 0.0)),
        timeout_s=float(d.get("timeout_s", 5.0)), max_time_s=float(d.get("max_time_s", 900.0)))


def _settings(target: Target, spec: LoadSpec, d: dict[str, Any], repeat: int) -> RunSettings:
    return RunSettings(target=target.name, url=target.url, model=spec.model,
                       rate=spec.rate if spec.model == "open" else None, duration_s=spec.duration_s,
                       concurrency=spec.concurrency, requests=spec.requests,
                       warmup=Warmup(requests=spec.warmup_requests, seconds=spec.warmup_s),
                       timeout_s=spec.timeout_s, max_lag_ms=d.get("max_lag_ms"),
                       interval_s=d.get("interval_s", 1.0), find_max=bool(d.get("find_max")),
                       repeat=repeat, request=target.describe)


def check_target(name: str) -> None:
    """Only bench targets, with a suggestion: never the stack's service or infrastructure names."""
    if name not in TARGETS:
        close = difflib.get_close_matches(name, TARGETS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown bench target {name!r}; {hint}bench targets: {', '.join(TARGETS)}")


def _base_url(req: BenchRequest) -> str:
    if req.url:
        return req.url
    if req.target == "http":
        raise UsageError("the http target needs --url")

    rd = req.ctx.run_dir
    component = req.ctx.stack[BUS_TARGETS.get(req.target, (req.target,))[0]]
    if not component.url:
        runtime.require_running(rd)  # no stack found: load nothing at default ports nobody named
    return component.base_url


def _operator_auth(req: BenchRequest) -> dict[str, str]:
    """The operator token, only for the service trade-ops started (an Impostor error, exit 3,
    when something else holds its port: identity.py)."""
    name = BUS_TARGETS.get(req.target, (req.target,))[0]
    return identity.operator_headers_for(req.ctx.run_dir.path, req.ctx.stack[name])


def contract_table(req: BenchRequest) -> dict[str, Any] | None:
    """`[contracts.order]` (`[contracts.risk]`) of the stack file given with --stack."""
    if req.ctx.stack_file is None or req.target not in ("oms", "risk"):
        return None
    return req.ctx.stack.contracts.get("order" if req.target == "oms" else "risk")


def _nats(req: BenchRequest) -> NatsAccess | None:
    """The running stack's NATS, for a target answered on the bus (as the CLI's own user)."""
    if req.target not in BUS_TARGETS:
        return None
    if req.url:
        raise UsageError(f"the {req.target} target reads the stack's NATS: bench the stack trade-ops "
                         "started, without --url",
                         detail=f"trade-ops up --only {','.join(BUS_TARGETS[req.target])}, then "
                                f"trade-ops bench {req.target}")
    from trade_ops.bench.bus_targets import NatsAccess
    from trade_ops.credentials import nats_login

    return NatsAccess(req.ctx.stack.nats_url(), nats_login(req.ctx.run_dir.path))


def _measure(target: Target, spec: LoadSpec, d: dict[str, Any], slos: list[Slo], console: Console,
             live: bool, label: str, cpu: CpuMeter | None = None) -> Analysis:
    before = host_conditions()
    if cpu:
        cpu.start()
    if live and spec.expected_s() > LIVE_AFTER_S and console.is_terminal:
        with LiveLine(console, label) as line:
            raw = run_load(target, spec, on_tick=line.tick)
    else:
        raw = run_load(target, spec)
    a = analyse(raw, spec, interval_s=float(d.get("interval_s", 1.0)))
    a.result.cpu = cpu.stop(len(raw)) if cpu else None  # warm-up included: it costs CPU too
    a.result.conditions = conditions_between(before, host_conditions())
    judge(a.result, slos, d.get("max_lag_ms"))
    return a


def _find_max(target: Target, sc: Scenario, slos: list[Slo], console: Console,
              live: bool) -> tuple[Analysis, FindMax, LoadSpec]:
    d = sc.definition
    # -d sets the length of each step; otherwise the scenario's find_max_step_s
    step_s = float(sc.overrides.get("duration_s") or d.get("find_max_step_s", 5.0))
    runs: dict[float, tuple[Analysis, LoadSpec]] = {}

    def measure(rate: float) -> Step:
        spec = load_spec(d, rate=rate, duration_s=step_s)
        spec.warmup_s, spec.warmup_requests = min(spec.warmup_s or 1.0, 1.0), 0
        spec.concurrency = max(spec.concurrency, 64)
        a = _measure(target, spec, d, slos, console, live, f"find-max {rate:,.0f}/s")
        r = a.result
        kept_up = r.rate >= 0.9 * rate
        passed = bool(r.passed) and kept_up
        runs[round(rate, 2)] = (a, spec)
        console.print(f"  {rate:>9,.0f}/s  achieved {r.rate:>9,.0f}/s  "
                      f"p50 {r.latency_ms.p50:.3f} ms  "
                      f"p99 {r.latency_ms.p99:.3f} ms  errors {r.errors}  "
                      + ("[green]pass[/]" if passed else "[red]fail[/]")
                      + ("" if r.valid else f"  (invalid: {r.invalid_reason})"))
        if r.interrupted:
            raise KeyboardInterrupt
        return Step(rate=rate, passed=passed, valid=r.valid, rate_achieved=r.rate, p50_ms=r.latency_ms.p50,
                    p99_ms=r.latency_ms.p99, lag_p99_ms=r.schedule_lag_ms.p99, errors=r.errors,
                    failures=r.failures, invalid_reason=r.invalid_reason)

    console.print(f"find-max: {target.url}, steps of {step_s:g} s, SLOs {', '.join(s.expr for s in slos)}")
    interrupted = False
    try:
        fm = find_max(measure, float(d.get("find_max_start", d.get("rate") or 100.0)),
                      float(d.get("find_max_limit", 20000.0)))
    except KeyboardInterrupt:
        interrupted = True
        passed_rates = [rate for rate, (a, _) in runs.items() if a.result.passed]
        fm = FindMax(max_rate=max(passed_rates) if passed_rates else None, limited_by="interrupted",
                     steps=[Step(rate=rate, passed=bool(a.result.passed), valid=a.result.valid)
                            for rate, (a, _) in runs.items()])
    best = fm.max_rate if fm.max_rate is not None else fm.steps[-1].rate
    a, spec = runs[best]
    if interrupted:
        a.result.interrupted = True
        judge(a.result, slos, d.get("max_lag_ms"))
    elif fm.max_rate is None:
        a.result.passed = False
        a.result.failures = [*a.result.failures, "find-max: no rate met the SLOs with a valid measurement"]
        if a.result.exit_code == ExitCode.OK:
            a.result.status, a.result.exit_code = "fail", int(ExitCode.FAILED)
    return a, fm, spec


def _describe(sc: Scenario, slos: list[Slo], console: Console) -> None:
    """Say what is measured: flags override the scenario's load and keep its SLOs."""
    load = {k: v for k, v in sc.overrides.items() if k not in ("slo", "find_max")}
    given = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in load.items())
    own = sc.definition.get("slo", [])
    exprs = [s.expr + (" (default)" if s.expr == DEFAULT_ERROR_SLO and s.expr not in own else "")
             for s in slos]
    console.print(f"[dim]scenario {sc.name}" + (f", flags override {given}" if given else "")
                  + f"; SLOs: {', '.join(exprs)}[/]")


def run_bench(req: BenchRequest, console: Console, live_console: Console | None = None) -> BenchOutcome:
    check_target(req.target)
    if not 1 <= req.repeat <= MAX_REPEAT:
        raise UsageError(f"--repeat must be between 1 and {MAX_REPEAT}, not {req.repeat}")
    sc = resolve(req.scenario or default_scenario(req.target), req.overrides)
    d = sc.definition
    slos = with_default_gates(parse_slos(list(d.get("slo", []))))
    if req.runs_dir is None:

        req.runs_dir = req.ctx.run_dir.runs
    if req.save and not req.force:
        refuse_existing(req.save, req.runs_dir)
    if d.get("find_max") and req.repeat > 1:
        raise UsageError("--repeat and --find-max do not go together")
    lc = live_console or console
    with contextlib.ExitStack() as stack:
        calibration = None
        if req.calibrate:
            console.print("calibrating against the null endpoint (overhead, then max rate) ...")
            calibration = cal.calibrate(full=True)
            cal.save_cache(req.ctx.run_dir, calibration)
        own_null = req.target == "null" and not req.url
        nats = _nats(req)
        base = stack.enter_context(NullServer()) if own_null else _base_url(req)
        # orders in the contract the stack file's [contracts.order] or a foreign OMS's (--url)
        # OpenAPI schema states; the same contract reads each answer's verdict
        table = contract_table(req)
        contract = contract_for(req.target, base, table, foreign=bool(req.url))
        # the stack's own operator token when it has credentials (account tokens are on off
        # loopback, as in containers); sent, never saved with the run
        auth = {} if req.url or req.target in ("http", "null") else _operator_auth(req)
        target = make_target(req.target, base, method=req.method, body=req.body,
                             headers={**auth, **expand_headers(req.headers)}, order=d.get("order"),
                             allow_remote=req.allow_remote, contract=contract, nats=nats)
        probe(target.host, target.port)
        if contract is not None and (req.url or table is not None):
            lc.print(f"[dim]orders follow {contract.describe()}[/]")
        _describe(sc, slos, lc)
        repeats: list[Analysis] = []
        if d.get("find_max"):
            analysis, fm, spec = _find_max(target, sc, slos, lc, req.live)
        else:
            spec = load_spec(d)
            spec.check()
            # CPU per request when the target is the stack trade-ops started (not --url).
            cpu = None if req.url or own_null else CpuMeter.for_run_dir(req.ctx.run_dir)
            if cpu:
                cpu.measure_idle()
            for k in range(req.repeat):
                label = f"bench {req.target}" + (f" {k + 1}/{req.repeat}" if req.repeat > 1 else "")
                repeats.append(_measure(target, spec.repeat(k), d, slos, lc, req.live, label, cpu))
                if repeats[-1].result.interrupted:
                    break
            analysis = merge(repeats)
            if len(repeats) > 1:
                first, last = repeats[0].result.conditions, repeats[-1].result.conditions
                if first is not None and last is not None:
                    analysis.result.conditions = conditions_between(first.before, last.after)
                analysis.result.cpu = repeats[-1].result.cpu
                judge(analysis.result, slos, d.get("max_lag_ms"))
            fm = None
    r = analysis.result
    r.target, r.url, r.scenario, r.scenario_hash = target.name, target.url, sc.name, sc.hash
    r.repeat, r.contract, r.find_max = len(repeats) if repeats else 1, target.describe.get("contract"), fm
    saved = None
    if req.save:
        calibration = calibration or cal.calibration_for_save(req.ctx.run_dir)
        settings = _settings(target, spec, d, req.repeat)
        run = build_run(req.save, sc.to_json(), settings, calibration, r, analysis,
                        command=bench_command(req), repeats=repeats if len(repeats) > 1 else None)
        if env := secret_header_vars(req):
            run.meta.command_env = env  # what to set before running the command (never the value)
        saved = save_run(run, analysis, req.runs_dir)
        r.saved = str(saved[0])
    return BenchOutcome(r, analysis, ExitCode(r.exit_code), saved, calibration)


def show(outcome: BenchOutcome, console: Console) -> None:
    r = outcome.result
    if r.find_max is not None:
        fm = r.find_max
        console.print(find_max_table(fm))
        if fm.max_rate is None:
            console.print(f"[bold red]find-max:[/] no rate met the SLOs with a valid measurement "
                          f"(stopped by {fm.limited_by or 'the first step'})")
        else:
            limit = _LIMITS.get(fm.limited_by, fm.limited_by)
            console.print(f"[bold]find-max: {fm.max_rate:,.0f} req/s[/] is the highest rate that met the "
                          f"SLOs with a valid measurement (stopped by: {limit})")
    model = "open loop, latency from intended start" if r.corrected else "closed loop"
    runs = f", {r.repeat} runs" if r.repeat > 1 else ""
    console.print(result_table(r, f"{r.target} {r.url} ({r.scenario}, {model}{runs})"))
    for line in verdict_lines(r, outcome.calibration):
        console.print(line)
    if outcome.saved:
        console.print(f"saved {outcome.saved[0]} and {outcome.saved[1]}")
    console.print(_VERDICT[r.status])


_LIMITS = {"slo": "an SLO failed above it", "generator": "the generator could not keep the schedule above it",
           "limit": "the search limit (find_max_limit)", "steps": "the step budget",
           "interrupted": "Ctrl-C"}
_VERDICT = {"pass": "[green]PASS[/]", "fail": "[bold red]FAIL[/]",
            "invalid": f"[bold yellow]INVALID MEASUREMENT[/] (exit {int(ExitCode.INVALID)}): figures shown, "
                       "not trusted",
            "interrupted": "[bold yellow]INTERRUPTED[/]: the summary of what was measured so far"}
