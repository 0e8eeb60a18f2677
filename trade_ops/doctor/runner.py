"""Run every check at once and fold the results into one document.

Each probe runs concurrently on one httpx.AsyncClient, bounded by its own budget: a
hanging service costs its timeout, not the whole run. The DoctorReport is what the CLI
renders (the terminal, `--json`, STATUS_REPORT.md) and `<run_dir>/doctor-last.json` keeps.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from trade_ops.doctor import (
    check_config,
    check_dataflow,
    check_functional,
    check_infra,
    check_posture,
    check_processes,
    check_services,
    monitoring,
    round_trip,
)
from trade_ops.doctor.model import (
    BenchSeen,
    CheckResult,
    DoctorReport,
    overall_status,
    summarize,
)
from trade_ops.doctor.rootcause import assign
from trade_ops.doctor.target import Target
from trade_ops.errors import ExitCode
from trade_ops.rundir import RunDir

__all__ = ["Probe", "latest_bench", "run_doctor", "run_doctor_async", "save_last"]

RATE_WINDOW_S = 0.3
BURST_WAIT_S = 0.25


@dataclass
class Probe:
    results: list[CheckResult]
    fn: Callable[[], Awaitable[None]]
    budget: float
    after_burst: bool = False  # start once the burst of health probes is answered
    # Start once every other probe is done: the Docker SDK's import and engine calls, in a
    # thread, hold the GIL long enough on a busy machine to time out valkey's PING.
    last: bool = False
    # Mostly waits, listening (the wire sample): the quiet /health times are measured meanwhile.
    listens: bool = False


def _probes(target: Target, http: Any) -> list[Probe]:
    t = target.timeout
    probes: list[Probe] = []

    def add(result: CheckResult, fn: Callable[[], Awaitable[None]], budget: float,
            *more: CheckResult, after_burst: bool = False) -> None:
        probes.append(Probe([result, *more], fn, budget, after_burst))

    # nats and the lake expect trade-ops' streams and tables only where its own services run:
    # where trade-ops started nothing, they wait for the services' health answers to know.
    identify = 0.0 if target.supervised else 2 * t + 0.5
    for c in target.infra:
        r = CheckResult(c.name, "infrastructure", component=c.name)
        if c.kind == "valkey":
            add(r, partial(check_infra.check_valkey, target, c, r), t * 2 + 0.2)
        elif c.kind == "nats":
            add(r, partial(check_infra.check_nats, target, http, c, r), t * 2 + 0.2 + identify)
        else:
            add(r, partial(check_infra.check_lake, target, c, r), t * 2 + 0.2 + identify)
    for c in target.services:
        r = CheckResult(c.name, "services", component=c.name)
        add(r, partial(check_services.check_service, target, http, c, r), t * 2 + 0.3)

    fn = check_functional
    traded = asyncio.Event()  # reconciliation compares once the round trip's fills are settled
    if target.has("risk"):
        for oversized, label in ((False, "risk approves a small order"),
                                 (True, "risk rejects an oversized order")):
            r = CheckResult(label, "functional", component="risk")
            add(r, partial(fn.check_risk, target, http, r, oversized), t * 2 + 0.3)
    if target.has("gateway"):
        for label, check in (("gateway /tickers fresh", fn.check_gateway_tickers),
                             (f"gateway /ticker/{fn.SYMBOL}", fn.check_gateway_ticker),
                             ("gateway unknown symbol -> 404", fn.check_gateway_unknown)):
            r = CheckResult(label, "functional", component="gateway")
            add(r, own_only(target, "gateway", r, partial(check, target, http, r), API_RULES), t * 3 + 1)
    venue = ("oms", "risk", "exeq", "live-gateway", "gateway")
    if target.has("oms") and not target.may_trade:
        why = "--no-trade" if target.trade is False else \
            "not a stack trade-ops started: add --trade to allow it"
        trip = CheckResult("oms order round trip", "functional", status="skip", component="oms",
                           summary=f"skipped ({why})")
        trip.details.append(f"read-only: doctor places no order here ({why})")
        add(trip, _nothing, 0.1)
    elif target.has(*venue) or (target.has("oms") and target.explicit):
        trip = CheckResult("oms order round trip", "functional", component="oms", needs=venue[1:])
        books = None
        if target.has("ptrc", "pnl"):
            books = CheckResult("positions and P&L reflect the fill", "functional", component="ptrc",
                                needs=("pnl", *venue))
        more = (books,) if books else ()
        async def trip_then_reconcile() -> None:
            try:
                await round_trip.round_trip(target, http, trip, books)
            finally:
                traded.set()

        # Measured once the burst of /health calls is answered: its times are the OMS's, not ours.
        add(trip, trip_then_reconcile, t * 7 + 0.5, *more, after_burst=True)

    flow = check_dataflow
    # Tick rates, the TICKS stream, sink /stats and JetStream lag are trade-ops' own services'
    # (and streams'): a foreign service's data flow is what the messaging topology shows.
    wait = 2 * t + 0.5  # how long a gated check may wait for its service's health answer
    if target.has("gateway", "nats"):
        r = CheckResult("ticks flowing", "dataflow", component="gateway", needs=("nats",))
        add(r, own_only(target, "gateway", r, partial(flow.check_ticks, target, http, r, RATE_WINDOW_S),
                        "the TICKS stream is trade-ops' own"), RATE_WINDOW_S + 2 * t + 0.3 + wait)
    for name in flow.SINKS:
        if target.has(name):
            r = CheckResult(f"{name} rows", "dataflow", component=name)
            add(r, partial(flow.check_sink, target, http, r, name, RATE_WINDOW_S),
                RATE_WINDOW_S + 2 * t + 0.3 + wait)
    if target.has("nats") and target.services:
        r = CheckResult("consumer lag", "dataflow", needs=("nats",))
        add(r, partial(flow.check_consumer_lag, target, http, r), t * 2 + 0.3 + wait)

    if monitoring.available(target) and target.services:
        from trade_ops.doctor import check_topology

        # The topology as a whole, then one result per subject family and finding, added as read.
        topo = [CheckResult("messaging topology", "dataflow", needs=("nats",))]
        probes.append(Probe(topo, partial(check_topology.check_topology, target, http, topo),
                            t * 5 + 1 + wait + target.wire_window, listens=True))

    if target.has("oms"):
        r = CheckResult("orders, fills, positions and lake agree", "dataflow", component="event-writer")
        budget = max(3.0, t * 3)
        if not any(p.results[0].name == "oms order round trip" and p.after_burst for p in probes):
            traded.set()
        add(r, partial(_reconcile, target, http, r, budget, traded), budget + t * 7 + 1 + wait)

    if target.docker:  # the engine's check, then one result per container, added as read
        # imported here: its container model brings compose's (~10 ms of a start that has no use for it)
        from trade_ops.doctor import check_docker

        engine = CheckResult("docker", "processes")
        found = [engine]
        probes.append(Probe(found, lambda: check_docker.check_containers(target, engine, found), t * 4 + 1,
                            last=True))
    for p in target.processes.values():
        r = CheckResult(f"process {p.name}", "processes", component=p.name)
        add(r, partial(asyncio.to_thread, check_processes.check_process, target, p, r), t + 1)
    return probes


async def _nothing() -> None:
    return None


API_RULES = "/tickers and the unknown-symbol 404 are trade-ops' own API rules"


def own_only(target: Target, name: str, r: CheckResult, check: Callable[[], Awaitable[None]],
             why: str) -> Callable[[], Awaitable[None]]:
    """A check of trade-ops' own model: it runs on trade-ops' own `name`, and is skipped, with
    why, on a foreign one."""
    async def gated() -> None:
        if await target.is_own(name):
            r.rest_on("trade-ops' model")
            await check()
        else:
            r.skip(f"{name} is not a trade-ops service ({why})")

    return gated


async def _reconcile(target: Target, http: Any, r: CheckResult, budget: float, traded: asyncio.Event) -> None:
    """Reconciliation where it applies, or a skip that says why not."""
    from trade_ops.doctor import reconcile, reconcile_foreign

    if not target.reconcile_window:
        r.skip("--reconcile-window 0")
        return
    if target.explicit or not await target.is_own("oms"):
        # what that deployment shows: the OMS's own listing and the fills it keeps
        await reconcile_foreign.check_foreign_reconcile(target, http, r, target.reconcile_window, traded)
        return
    missing = [n for n in ("nats", "valkey") if not target.has(n)]
    if missing:
        r.skip(f"doctor does not examine {' and '.join(missing)} here: the fills stream and the "
               f"order store are read there (give {' and '.join('--' + n for n in missing)})")
        return
    r.rest_on("trade-ops' model")
    await reconcile.check_reconcile(target, r, target.reconcile_window, budget, traded)


async def _run_probe(probe: Probe, target: Target) -> None:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe.fn(), probe.budget)
    except TimeoutError:
        for r in probe.results:
            if r.duration_ms == 0:
                r.fail(f"no answer within {probe.budget:.1f}s (hanging?)",
                       target.logs_remedy(r.component, answers=False) if r.component else None)
    except Exception as exc:  # a check that crashes is a failed check with its reason, not a crash
        for r in probe.results:
            r.fail(f"doctor check crashed: {type(exc).__name__}: {exc}",
                   "report it: a doctor check must not crash (run with --json for the details)")
    elapsed = (time.perf_counter() - started) * 1000
    for r in probe.results:
        if r.duration_ms == 0:
            r.duration_ms = elapsed


async def run_doctor_async(target: Target, strict: bool = False) -> DoctorReport:
    import httpx

    from trade_ops.doctor.http import PoolPerOrigin

    started_at = datetime.now(UTC)
    started = time.perf_counter()
    transport = PoolPerOrigin(httpx.Limits(max_connections=200, max_keepalive_connections=50))
    async def record(request: httpx.Request) -> None:
        target.contacted.add(f"{request.url.host}:{request.url.port}")

    hooks = {"request": [record]}
    try:
        async with httpx.AsyncClient(transport=transport, trust_env=False, event_hooks=hooks) as http:
            probes = _probes(target, http)
            probes += [Probe([r], fn, target.timeout * 2 + 0.3)
                       for r, fn in check_posture.posture_checks(target, http, strict)]
            endpoints = check_posture.endpoint_checks(target, http, strict)
            if endpoints is not None:  # waits for each service's health answer to tell whose it is
                probes.append(Probe(endpoints[0], endpoints[1], target.timeout * 4 + 1))
            first = [p for p in probes if not p.last]
            burst = [asyncio.create_task(_run_probe(p, target)) for p in first
                     if not p.after_burst and p.results[0].group in ("infrastructure", "services")]
            rest = [asyncio.create_task(_run_probe(p, target)) for p in first
                    if not p.after_burst and not p.listens
                    and p.results[0].group not in ("infrastructure", "services")]
            listening = [asyncio.create_task(_run_probe(p, target)) for p in first if p.listens]
            # A hanging service must not delay the round trip: wait for the burst a little, not for all.
            await asyncio.wait(burst, timeout=BURST_WAIT_S) if burst else None
            await asyncio.gather(*burst, *rest, *(_run_probe(p, target) for p in first if p.after_burst))
            # The services' quiet /health times, one at a time, while the wire sample listens (it
            # leaves the event loop idle; after it, they were ~40 ms more of every foreign run).
            answered = [r for p in first for r in p.results]
            await asyncio.gather(*listening, _quiet_latencies(target, http, answered))
            await asyncio.gather(*(_run_probe(p, target) for p in probes if p.last))
            # Parsing compose.yaml in a thread holds the GIL for long on a busy machine: after the probes.
            config = await asyncio.to_thread(check_config.config_results, target)
            results = [r for p in probes for r in p.results] + config
    finally:  # the system-account connection of this run (monitoring.py)
        await monitoring.close(target)
    root_causes = assign(results, target.stack, target.own)
    for r in results:
        r.duration_ms = round(r.duration_ms, 1)
    reachable = any(r.status != "fail" or not r.data.get("unreachable") for r in results
                    if r.group in ("infrastructure", "services") and r.name != "lake"
                    and (r.group == "services" or r.component in ("valkey", "nats")))
    status = overall_status(results, strict)
    exit_code = ExitCode.CANNOT_RUN if not reachable else ExitCode.FAILED if status == "fail" else ExitCode.OK
    return DoctorReport(
        tool="trade-ops doctor",
        status=status,
        exit_code=int(exit_code),
        strict=strict,
        reachable=reachable,
        started_at=started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        summary=summarize(results),
        root_causes=root_causes,
        checks=results,
        target=target.describe(),
        environment=_environment(results),
        bench=latest_bench({c.base_url for c in target.services}, target.run_dir.runs),
    )


async def _quiet_latencies(target: Target, http: Any, results: list[CheckResult]) -> None:
    """Each service's /health time measured once more, one at a time, once the other probes are
    done (a wire sample may still listen): in the burst, 40 concurrent probes queue on one event
    loop and a 2 ms answer reads 80 ms."""
    from trade_ops.doctor.http import call

    for r in results:
        c = target.component(r.component) if r.group == "services" and r.component else None
        if c is None or r.data.get("http_status") is None:
            continue
        answer = await call(http, "GET", c.base_url + c.health_path, target.timeout)
        if answer.response is not None:
            r.data["burst_latency_ms"] = r.data.get("latency_ms")
            r.data["latency_ms"] = round(answer.ms, 1)
            if r.status == "pass" and r.summary.endswith(" ms"):
                r.summary = " · ".join(p for p in (r.data.get("version"), f"{answer.ms:.0f} ms") if p)


def run_doctor(target: Target, strict: bool = False) -> DoctorReport:
    return asyncio.run(run_doctor_async(target, strict))


def _git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=1, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _environment(results: list[CheckResult]) -> dict[str, str | int | None]:
    from trade_ops import __version__

    versions = {r.name: str(r.data["version"]) for r in results
                if r.group == "infrastructure" and r.data.get("version")}
    return {"trade_ops": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(terse=True), "host": socket.gethostname(),
            "cpus": os.cpu_count(), "git_revision": _git_revision(), "cwd": str(Path.cwd()),
            **{f"{name}_version": v for name, v in versions.items()}}


def latest_bench(base_urls: set[str], runs: Path) -> BenchSeen | None:
    """The newest saved bench run against this stack (by the run's own created time), its
    latency and its SLOs; None when no saved run measured this stack."""
    from trade_ops.savedruns import latest_run

    found = latest_run(base_urls, runs)
    if found is None:
        return None
    path, run = found
    return BenchSeen(name=run.name or path.stem, path=str(path), saved_at=run.created_at,
                     target=run.settings.url or None, latency_ms=run.results.latency_ms, slo=run.results.slo,
                     passed=run.results.passed)


def save_last(report: DoctorReport, run_dir: RunDir) -> Path | None:
    """Keep the report as the run directory's doctor-last.json (for `trade-ops report status`)."""
    try:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        path = run_dir.doctor_last
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
        tmp.replace(path)
        return path
    except OSError:
        return None
