"""One chaos run: load on the OMS (the bench generator), faults on a schedule, retries of
every order that got no clear answer, then the invariants (verify.py) once things settle.

    load      open loop at `rate` orders/s for `duration_s`, bench orders (MARKET IOC, tiny,
              alternating sides, a client_order_id each) on an account of the run's own
    faults    in a thread, on the same clock (faults.py)
    retries   each request answered 503/504 or not at all is sent again, same body and
              client_order_id, until it gets 201 or a 4xx (a client's retry)
    settle    wait (up to `settle_s`) until every accepted order is terminal and in ptrc and
              the lake, then judge
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from trade_ops import credentials, identity
from trade_ops import runtime as runtimes
from trade_ops.bench.loadgen import LoadSpec, run_load
from trade_ops.bench.target import Target
from trade_ops.bench.targets import make_target
from trade_ops.chaos import verify
from trade_ops.chaos.faults import Fault, parse_faults
from trade_ops.chaos.foreign import check_faults
from trade_ops.chaos.inject import Injector
from trade_ops.chaos.result import ChaosResult, HealthSeen
from trade_ops.context import Context
from trade_ops.errors import RunDirError, UsageError
from trade_ops.rundir import RunDir
from trade_ops.stack import Stack

__all__ = ["ChaosRequest", "run_chaos"]

BURST_BASE = 10_000_000  # request indices of burst orders (load indices stay below)
UNCLEAR = (0, 499, 502, 503, 504)  # answers that leave the order's fate to a retry


@dataclass
class ChaosRequest:
    faults: list[str]
    rate: float = 100.0
    duration_s: float | None = None  # default: the last fault's end + 4 s
    settle_s: float = 40.0
    retry_s: float = 25.0  # longer than the OMS's claim TTL (10 s)
    ctx: Context = field(default_factory=Context.resolve)  # the stack to load and fault
    allow_foreign: bool = False
    report_dir: Path | None = None  # default: RUN_DIR/chaos


@dataclass
class _Outcomes:
    """coid -> (status, seconds from load start) of every request, load and bursts."""

    first: dict[str, tuple[int, float]] = field(default_factory=dict)
    final: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, coid: str, status: int, at: float) -> None:
        with self.lock:
            self.first.setdefault(coid, (status, at))
            self.final[coid] = status


def _running(rd: RunDir, allow_foreign: bool) -> set[str]:
    """The components running under trade-ops here (processes or containers, as its runtime
    says); a stack trade-ops did not start is refused (its OMS port held by another)."""
    running = {st.name for st in runtimes.of(rd).status(rd) if st.alive} if rd.has_state() else set()
    if allow_foreign:
        return running
    # no stack to run against: exit 3, as doctor, bench and restart say it
    if not rd.has_state():
        raise RunDirError(f"no stack started by trade-ops in {rd.path}",
                          detail="start one with `trade-ops up`, or pass --allow-foreign")
    for name in ("oms", "valkey", "nats"):
        if name not in running:
            raise RunDirError(f"{name} of the stack in {rd.path} is not running under trade-ops",
                              detail="start it with `trade-ops up`, or pass --allow-foreign")
    return running


async def _post_all(url: str, target: Target, indices: list[int], at_once: int | None = None,
                    timeout: float = 10.0, details: dict[int, str] | None = None,
                    auth: dict[str, str] | None = None) -> list[tuple[int, int]]:
    """POST the orders of `indices`, `at_once` at a time (all at once: a burst)."""
    width = max(1, at_once or len(indices))
    limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
    headers = {"content-type": "application/json", **(auth or {})}
    gate = asyncio.Semaphore(width)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        async def one(i: int) -> tuple[int, int]:
            assert target.body is not None
            async with gate:
                try:
                    resp = await client.post(target.path, content=target.body(i), headers=headers)
                except httpx.HTTPError as exc:
                    if details is not None:
                        details[i] = f"{type(exc).__name__}: {exc}"
                    return i, 0
            if details is not None and resp.status_code != 201:
                details[i] = resp.text[:200]
            return i, resp.status_code

        return list(await asyncio.gather(*(one(i) for i in indices)))


class _HealthWatch(threading.Thread):
    """Every service's /health once a second while the run lasts: the worst status seen,
    and every check that was not pass (e.g. a background task being restarted)."""

    def __init__(self, stack: Stack, names: set[str]) -> None:
        super().__init__(name="chaos-health", daemon=True)
        self.urls = {c.name: c.base_url + c.health_path for c in stack.services if c.name in names}
        self.worst: dict[str, str] = {}
        self.seen: dict[str, set[str]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        rank = {"pass": 0, "warn": 1, "fail": 2, "down": 3}
        with httpx.Client(timeout=1.0) as client:
            while not self.done.wait(1.0):
                for name, url in self.urls.items():
                    try:
                        doc = client.get(url).json()
                        status = str(doc.get("status", "fail"))
                        for key, entries in (doc.get("checks") or {}).items():
                            for e in entries:
                                if e.get("status") != "pass":
                                    self.seen.setdefault(name, set()).add(f"{key} {e.get('status')}")
                    except (httpx.HTTPError, ValueError):
                        status = "down"
                    if rank.get(status, 2) > rank.get(self.worst.get(name, "pass"), 0):
                        self.worst[name] = status
                    self.worst.setdefault(name, status)

    def seen_so_far(self) -> HealthSeen:
        return HealthSeen(worst=dict(sorted(self.worst.items())),
                          not_pass={k: sorted(v) for k, v in sorted(self.seen.items())})


def _coid(target: Target, i: int) -> str:
    assert target.body is not None
    return str(orjson.loads(target.body(i))["client_order_id"])


class _FaultThread(threading.Thread):
    def __init__(self, faults: list[Fault], injector: Injector, t0: float, burst: Any) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.faults, self.injector, self.t0, self.burst = faults, injector, t0, burst
        self.error: BaseException | None = None

    def _now(self) -> float:
        return time.perf_counter() - self.t0

    def run(self) -> None:
        try:
            for f in sorted(self.faults, key=lambda f: f.start_s):
                time.sleep(max(0.0, f.start_s - self._now()))
                f.began = self._now()
                self._inject(f)
                f.ended = self._now()
        except BaseException as exc:  # reported by the run, never lost in the thread
            self.error = exc

    def _bring_back(self, f: Fault, name: str) -> None:
        problem = self.injector.start(name)
        if problem:
            f.notes.append(problem)

    def _inject(self, f: Fault) -> None:
        inj, hold = self.injector, f.hold_s
        if f.name in ("valkey-kill", "nats-kill", "service-kill", "valkey-restart-burst"):
            name = {"valkey-kill": "valkey", "nats-kill": "nats", "valkey-restart-burst": "valkey"}.get(
                f.name, f.arg or "")
            inj.kill(name)
            time.sleep(hold)
            self._bring_back(f, name)
            if f.name == "valkey-restart-burst":
                time.sleep(1.0)
                f.notes.append(self.burst(60))
        elif f.name in ("nats-stop", "service-stop"):
            name = "nats" if f.name == "nats-stop" else f.arg or ""
            inj.pause(name)
            try:
                time.sleep(hold)
            finally:
                inj.resume(name)
        elif f.name == "burst":
            f.notes.append(self.burst(int(f.arg or 100)))
        elif f.name == "claim-crash":
            inj.pause("risk")  # requests now hold their claim, waiting for risk
            try:
                time.sleep(0.2)
                inj.kill("oms")
            finally:
                inj.resume("risk")
            time.sleep(hold)
            self._bring_back(f, "oms")


def run_chaos(req: ChaosRequest, on_line: Any = None) -> ChaosResult:
    say = on_line or (lambda _text: None)
    rd, stack = req.ctx.run_dir, req.ctx.stack
    running = _running(rd, req.allow_foreign)
    faults = parse_faults(req.faults, [c.name for c in stack.services])
    if not faults:
        raise UsageError("name at least one --fault")
    # every fault acts where its component runs, or nothing is sent (exit 2, naming what can)
    check_faults(faults, stack, running, rd.path)
    if req.rate <= 0 or req.rate > 2000:
        raise UsageError("--rate must be in (0, 2000]")
    last_end = max(f.start_s + f.hold_s for f in faults)
    duration = req.duration_s if req.duration_s is not None else last_end + 4.0
    if duration <= 0 or duration > 600:
        raise UsageError("--duration must be in (0, 600]")

    run_id = f"chaos-{uuid.uuid4().hex[:8]}"
    account = run_id
    oms_url = stack["oms"].base_url
    # The operator's token: orders and reads of any account (none on a stack without credentials).
    # Only to the OMS trade-ops started: an impostor on its port is an error (identity.py).
    auth = identity.operator_headers_for(rd.path, stack["oms"])
    target = make_target("oms", oms_url, order={"account": account}, run_id=run_id, headers=auth)
    outcomes = _Outcomes()
    burst_n = [0]
    details: dict[int, str] = {}  # request index -> the body of its last unclear answer

    def burst(n: int) -> str:
        start = BURST_BASE + burst_n[0]
        burst_n[0] += n
        at = time.perf_counter() - t0
        answers = asyncio.run(_post_all(oms_url, target, list(range(start, start + n)), details=details,
                                        auth=auth))
        for i, code in answers:
            outcomes.add(_coid(target, i), code, time.perf_counter() - t0)
        codes = Counter(code for _, code in answers)
        shown = ", ".join(f"{c or 'no answer'} x{k}" for c, k in sorted(codes.items()))
        first_problem = next((details[i] for i, code in answers if code != 201 and i in details), "")
        return f"burst of {n} at {at:.1f}s: {shown}" + (f" (e.g. {first_problem})" if first_problem else "")

    since = time.time() - 1.0
    spec = LoadSpec(model="open", rate=req.rate, duration_s=duration, concurrency=256, timeout_s=10.0,
                    max_time_s=duration + 60)
    say(f"chaos {run_id}: {req.rate:g} orders/s for {duration:g}s on account {account}; faults: "
        + ", ".join(f.label for f in faults))
    t0 = time.perf_counter()
    thread = _FaultThread(faults, Injector(rd, stack, ours=running), t0, burst)
    health = _HealthWatch(stack, running)
    health.start()
    thread.start()
    raw = run_load(target, spec)
    thread.join(timeout=120)
    health.done.set()
    if thread.error is not None:
        raise thread.error
    for i, status, done in zip(raw.index, raw.status, raw.done, strict=True):
        outcomes.add(_coid(target, i), int(status), done - t0)
    sent = len(raw.index) + burst_n[0]

    # a client's retry of everything without a clear answer: same body, same client_order_id
    indices = {_coid(target, i): i for i in [*raw.index, *range(BURST_BASE, BURST_BASE + burst_n[0])]}
    pending = [c for c, code in outcomes.final.items() if code in UNCLEAR or code == 409]
    retried = len(pending)
    deadline = time.monotonic() + req.retry_s
    while pending and time.monotonic() < deadline:
        answers = asyncio.run(_post_all(oms_url, target, [indices[c] for c in pending], at_once=16,
                                        details=details, auth=auth))
        for i, code in answers:
            outcomes.final[_coid(target, i)] = code
        pending = [c for c in pending if outcomes.final[c] in UNCLEAR or outcomes.final[c] == 409]
        if pending:
            time.sleep(1.0)
    say(f"load done: {sent} sent; {retried} retried; settling...")

    # settle, then judge
    ptrc = stack.components.get("ptrc")
    lake_uri = stack.lake_uri(rd.path) if stack.first("lake") else None
    settle_deadline = time.monotonic() + req.settle_s
    while True:
        ev = asyncio.run(verify.gather(oms_url=oms_url, ptrc_url=ptrc.base_url if ptrc else None,
                                       nats_url=stack.nats_url(), lake_uri=lake_uri, account=account,
                                       coids=sorted(outcomes.final), since_s=since,
                                       nats_login=credentials.nats_login(rd.path), headers=auth))
        verdict = verify.judge(ev, outcomes.final)
        if verdict.settled or time.monotonic() > settle_deadline:
            break
        time.sleep(2.0)

    first_codes = Counter(str(code or "no answer") for code, _ in outcomes.first.values())
    final_codes = Counter(str(code or "no answer") for code in outcomes.final.values())
    recovery: dict[str, float | None] = {}
    for f in faults:
        after = [at for code, at in outcomes.first.values() if code == 201 and f.ended is not None
                 and at >= f.ended]
        recovery[f.label] = round(min(after) - f.ended, 3) if after and f.ended is not None else None
    result = ChaosResult(
        run_id=run_id, account=account, rate=req.rate, duration_s=duration,
        faults=[f.record() for f in faults], sent=sent,
        acknowledged=sum(1 for c in outcomes.final.values() if c == 201),
        first_answers=dict(sorted(first_codes.items())), final_answers=dict(sorted(final_codes.items())),
        retried=retried, recovery_s=recovery,
        lost=len(verdict.lost), traded_after_error=len(verdict.traded_after_error),
        duplicated=len(verdict.duplicated), unsettled=len(verdict.unsettled),
        safe=verdict.safe, settled=verdict.settled, passed=verdict.passed,
        examples=verdict.examples(), notes=verdict.notes,
        unclear_after_retries=[f"{c}: {outcomes.final[c] or 'no answer'} {details.get(indices[c], '')}"
                               for c in sorted(outcomes.final) if outcomes.final[c] in UNCLEAR][:5],
        health=health.seen_so_far(), load_average=[round(x, 2) for x in os.getloadavg()])
    report_dir = req.report_dir or rd.chaos
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"{run_id}.json"
    path.write_bytes(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2))
    result.report = str(path)
    return result
