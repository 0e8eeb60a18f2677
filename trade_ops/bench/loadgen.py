"""The load models. Both record, per request: its intended start, when the generator
dispatched it, when it was sent, when the answer was complete, and its outcome.

Open loop (constant arrival rate, like wrk2): request i is due at start + i/rate, whether
or not earlier ones have been answered. Latency is measured from that intended start, so
a stall in the target shows in every request that had to wait (coordinated omission
corrected); service time is measured from the actual send. Requests due while every
connection is busy wait in a backlog (that wait is part of their latency). Schedule lag
(dispatch - intended) is the generator's own delay: when it grows, the run is invalid.

Closed loop (N in flight): each of N workers sends its next request when the previous
answer arrives; latency equals service time (the original load test's model).

Every loop is bounded in count and in time (max_time_s). Ctrl-C ends a run early: what
was answered so far is returned, marked `interrupted` (a second Ctrl-C stops at once).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from trade_ops.bench.client import ConnectionFailed, ProtocolFailed, RequestTimeout
from trade_ops.bench.priority import raised_priority
from trade_ops.bench.target import CONNECTION, HTTP_ERROR, OK, PROTOCOL, REJECTED, TIMEOUT, Target, Transport
from trade_ops.errors import UsageError

__all__ = ["MAX_REQUESTS", "SAMPLES_PER_KIND", "LoadSpec", "Progress", "Raw", "run_load"]

MAX_REQUESTS = 5_000_000
SAMPLES_PER_KIND = 3  # the first answers of each error kind (and of rejections) are kept
REJECTION_SAMPLES = "rejected"  # the kind under which rejections are sampled (results keeps them apart)
_SAMPLE_CHARS = 240
clock = time.perf_counter


@dataclass
class LoadSpec:
    model: str = "closed"  # "open" | "closed"
    rate: float | None = None  # open: requests per second
    duration_s: float | None = None
    concurrency: int = 1  # closed: in flight; open: at most this many connections
    requests: int | None = None
    warmup_requests: int = 0
    warmup_s: float = 0.0
    timeout_s: float = 5.0
    max_time_s: float = 900.0  # hard bound on the whole run, warm-up included
    # open loop, one of several workers (bench/worker.py): this one sends requests shard,
    # shard+shards, ... of the full schedule, which starts at start_at (on `clock`)
    shard: int = 0
    shards: int = 1
    start_at: float | None = None
    # The number the target's ids start at (a client_order_id is bench-RUN-<id_base + i>):
    # each repeat of one run takes ids of its own, or an OMS would replay the first
    # repeat's answers to every later one and place nothing (`repeat`).
    id_base: int = 0

    def repeat(self, k: int) -> LoadSpec:
        """The same load for repeat k (from 0), with ids no other repeat uses: a stride of
        MAX_REQUESTS, the most one run sends, and even, so the sides still alternate."""
        return replace(self, id_base=k * MAX_REQUESTS)

    def check(self) -> None:
        if self.model not in ("open", "closed"):
            raise UsageError(f"load model must be 'open' or 'closed', not {self.model!r}")
        if self.model == "open" and not (self.rate and self.rate > 0):
            raise UsageError("an open-loop run needs --rate > 0")
        if self.model == "open" and not (self.duration_s or self.requests):
            raise UsageError("an open-loop run needs --duration or --requests")
        if self.model == "closed" and not (self.duration_s or self.requests):
            raise UsageError("a closed-loop run needs --requests or --duration")
        if self.concurrency < 1 or self.concurrency > 10_000:
            raise UsageError("--concurrency must be between 1 and 10000")
        for name in ("duration_s", "requests", "warmup_requests", "warmup_s", "timeout_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise UsageError(f"{name.removesuffix('_s')} must not be negative")
        if self.total_planned() > MAX_REQUESTS:
            raise UsageError(f"that run would send {self.total_planned():,} requests; the limit is "
                             f"{MAX_REQUESTS:,}")

    @property
    def warmup_n(self) -> int:
        """Warm-up requests (by index); open-loop warm-up seconds become requests at the rate."""
        extra = round((self.rate or 0) * self.warmup_s) if self.model == "open" else 0
        return self.warmup_requests + extra

    def total_planned(self) -> int:
        if self.model == "open":
            measured = round(self.rate * self.duration_s) if self.duration_s else (self.requests or 0)  # type: ignore[operator]
            return self.warmup_n + measured
        if self.requests:
            return self.warmup_n + self.requests
        return 0  # bounded by time (and MAX_REQUESTS)

    def expected_s(self) -> float:
        if self.model == "open":
            return self.total_planned() / self.rate  # type: ignore[operator]
        return (self.duration_s or 0) + self.warmup_s


@dataclass
class Raw:
    """Columns, one entry per finished request, plus what separates warm-up from measurement."""

    index: array[int] = field(default_factory=lambda: array("q"))
    intended: array[float] = field(default_factory=lambda: array("d"))
    dispatched: array[float] = field(default_factory=lambda: array("d"))
    sent: array[float] = field(default_factory=lambda: array("d"))
    done: array[float] = field(default_factory=lambda: array("d"))
    kind: array[int] = field(default_factory=lambda: array("b"))
    status: array[int] = field(default_factory=lambda: array("H"))
    warmup_n: int = 0
    warmup_until: float = 0.0  # requests sent before this (clock) are warm-up too
    planned: int = 0
    scheduled: int = 0
    started: float = 0.0
    ended: float = 0.0
    stopped_by_time: bool = False
    connections: int = 0
    interrupted: bool = False
    generator_nice: int | None = None  # the priority the generator ran at (None: not raised)
    generator_realtime: bool = False  # its threads ran in the real-time class (priority.py)
    late_s: float = 0.0  # how long after its start_at the schedule began (0: it was waiting)
    error_samples: dict[str, list[str]] = field(default_factory=dict)  # kind -> first answers, one line each

    def sample(self, kind: str, text: str | bytes) -> None:
        kept = self.error_samples.setdefault(kind, [])
        if len(kept) < SAMPLES_PER_KIND:
            line = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            line = " ".join(line.split())
            kept.append(line if len(line) <= _SAMPLE_CHARS else line[:_SAMPLE_CHARS] + "...")

    def add(self, i: int, intended: float, dispatched: float, sent: float, done: float, kind: int,
            status: int) -> None:
        self.index.append(i)
        self.intended.append(intended)
        self.dispatched.append(dispatched)
        self.sent.append(sent)
        self.done.append(done)
        self.kind.append(kind)
        self.status.append(status)

    def __len__(self) -> int:
        return len(self.index)


@dataclass
class Progress:
    raw: Raw
    started: float
    sent: int = 0
    errors: int = 0

    @property
    def completed(self) -> int:
        return len(self.raw)

    @property
    def in_flight(self) -> int:
        return self.sent - self.completed


class _Run:
    def __init__(self, target: Target, spec: LoadSpec) -> None:
        self.target, self.spec = target, spec
        self.raw = Raw(warmup_n=spec.warmup_n,
                       planned=len(range(spec.shard, spec.total_planned(), spec.shards)))
        self.conns: list[Transport] = []
        self.t0 = clock()
        self.hard_end = self.t0 + spec.max_time_s
        self.progress = Progress(self.raw, self.t0)
        self.tasks: list[asyncio.Task[None]] = []  # the workers, so an interrupted run can stop them

    async def one(self, conn: Transport, i: int, intended: float, dispatched: float) -> int:
        data = self.target.request(self.spec.id_base + i)
        self.progress.sent += 1
        sent = clock()
        status = 0
        try:
            status, body = await conn.request(data, self.spec.timeout_s)
            kind = self.target.classify(status, body)
            if kind == HTTP_ERROR:
                self.raw.sample(f"http_{status}", body or b"(empty body)")
            elif kind == REJECTED:
                self.raw.sample(REJECTION_SAMPLES, self.target.why_rejected(status, body))
        except RequestTimeout:
            kind = TIMEOUT
            self.raw.sample("timeout", f"no complete answer within {self.spec.timeout_s:g} s")
        except ConnectionFailed as exc:
            kind = CONNECTION
            self.raw.sample("connection", str(exc))
        except ProtocolFailed as exc:
            kind = PROTOCOL
            self.raw.sample("protocol", str(exc))
        self.raw.add(i, intended, dispatched, sent, clock(), kind, status)
        if kind not in (OK, REJECTED):
            self.progress.errors += 1
        return kind

    async def stop_workers(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def connection(self) -> Transport:
        conn = self.target.connection()
        self.conns.append(conn)
        return conn

    # -- closed loop ----------------------------------------------------------------
    async def closed(self) -> None:
        spec, counter = self.spec, itertools.count()
        limit = spec.total_planned() or MAX_REQUESTS
        warm_n = spec.warmup_n
        self.raw.warmup_until = self.t0 + spec.warmup_s
        deadline = [math.inf if not spec.duration_s else self.t0 + spec.warmup_s + spec.duration_s]
        if warm_n and spec.duration_s:
            deadline[0] = math.inf  # set when warm-up ends

        async def worker(conn: Transport) -> None:
            while True:
                now = clock()
                if now >= self.hard_end:
                    self.raw.stopped_by_time = True
                    return
                if now >= deadline[0]:
                    return
                i = next(counter)
                if i >= limit:
                    return
                if i == warm_n and warm_n and spec.duration_s:
                    deadline[0] = now + spec.warmup_s + spec.duration_s
                self.raw.scheduled = max(self.raw.scheduled, i + 1)
                if await self.one(conn, i, now, now) == CONNECTION:
                    await asyncio.sleep(0.01)  # do not spin on a refused connection

        self.tasks = [asyncio.ensure_future(worker(self.connection())) for _ in range(spec.concurrency)]
        await asyncio.gather(*self.tasks)

    # -- open loop ------------------------------------------------------------------
    async def open(self) -> None:
        spec, loop = self.spec, asyncio.get_running_loop()
        total, interval = spec.total_planned(), 1.0 / spec.rate  # type: ignore[operator]
        idle: list[asyncio.Future[tuple[int, float, float] | None]] = []
        backlog: deque[tuple[int, float, float]] = deque()
        busy: dict[int, tuple[int, float, float]] = {}
        workers = self.tasks
        finished = asyncio.Event()
        outstanding = [0]

        async def worker(conn: Transport, item: tuple[int, float, float] | None) -> None:
            key = id(conn)
            while True:
                if item is None:
                    if backlog:
                        item = backlog.popleft()
                    else:
                        fut = loop.create_future()
                        idle.append(fut)  # LIFO: the fewest connections stay in use
                        item = await fut
                        if item is None:
                            return
                busy[key] = item
                await self.one(conn, *item)
                del busy[key]
                item = None
                outstanding[0] -= 1
                if outstanding[0] == 0:
                    finished.set()

        def dispatch(item: tuple[int, float, float]) -> None:
            outstanding[0] += 1
            finished.clear()
            if idle:
                idle.pop().set_result(item)
            elif len(workers) < spec.concurrency:
                workers.append(loop.create_task(worker(self.connection(), item)))
            else:
                backlog.append(item)

        start = self.t0 = clock() + 0.002 if spec.start_at is None else spec.start_at
        self.raw.late_s = max(clock() - start, 0.0)
        self.raw.started = start
        self.hard_end = start + spec.max_time_s
        sched = _Schedule(loop, start, interval, total, self.hard_end, dispatch, spec.shard, spec.shards)
        await sched.run()
        if sched.stopped_by_time:
            self.raw.stopped_by_time = True
        self.raw.scheduled = sched.count
        drain = max(2 * spec.timeout_s, 5.0) + len(backlog) * interval
        if outstanding[0]:
            try:
                await asyncio.wait_for(finished.wait(), min(drain, max(self.hard_end - clock(), 1.0)))
            except TimeoutError:
                # the target, not the generator, is behind: what it never answered counts as
                # timeouts (errors), and only the run's own time bound makes the run invalid
                self.raw.stopped_by_time = clock() >= self.hard_end
        now = clock()
        for item in (*busy.values(), *backlog):  # never answered: a timeout at this moment
            self.raw.add(*item, item[2], now, TIMEOUT, 0)
        for w in workers:
            w.cancel()
        for fut in idle:
            if not fut.done():
                fut.set_result(None)
        await asyncio.gather(*workers, return_exceptions=True)


class _Schedule:
    """Dispatches request i at start + i*interval, from the event loop's own timers.

    A timer thread (sleeping precisely, then waking the loop) was tried first: after its
    sleep it has to take the GIL back from the loop, and that wait was the schedule lag p99
    of 4-9 ms at 100/s (2.5-4.5 ms against a null endpoint, with the generator in the
    real-time class; on the loop's own timers: 1.2-1.6 ms). The loop's timers have
    1 ms resolution: each wake dispatches everything due, and the next wake is never armed
    sooner than MIN_WAKE_S ahead, so a rate above 1000/s is sent in 1 ms batches instead of
    spinning on the loop (which burns a core the target may need). The delay from the
    intended start to the dispatch shows as schedule lag, and is part of every corrected
    latency.

    One of several workers dispatches every step-th request from first: the workers'
    schedules interleave into the one schedule of the whole run (k6's execution segments).
    """

    MIN_WAKE_S = 0.001

    def __init__(self, loop: asyncio.AbstractEventLoop, start: float, interval: float, total: int,
                 hard_end: float, dispatch: Callable[[tuple[int, float, float]], None], first: int = 0,
                 step: int = 1) -> None:
        self.loop, self.start, self.interval, self.total = loop, start, interval, total
        self.hard_end, self.dispatch = hard_end, dispatch
        self.first, self.step = first, step
        self.next = first
        self.stopped_by_time = False
        self.done: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None

    def flush(self) -> None:
        now = clock()
        i, start, interval, total, step = self.next, self.start, self.interval, self.total, self.step
        while i < total and start + i * interval <= now:
            self.dispatch((i, start + i * interval, now))
            i += step
        self.next = i

    @property
    def count(self) -> int:
        """Requests dispatched so far (this worker's)."""
        return len(range(self.first, min(self.next, self.total), self.step))

    def _wake(self) -> None:
        self.flush()
        now = clock()
        if self.next >= self.total:
            self._finish()
        elif now >= self.hard_end:
            self.stopped_by_time = True
            self._finish()
        else:
            # a delay from now, on our clock: uvloop's own clock is cached in whole milliseconds
            due = self.start + self.next * self.interval
            self._timer = self.loop.call_later(max(due - now, self.MIN_WAKE_S), self._wake)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    async def run(self) -> None:
        due = self.start + self.next * self.interval
        self._timer = self.loop.call_later(max(due - clock(), 0.0), self._wake)
        try:
            await self.done
        finally:
            self._timer.cancel()


async def _ticker(progress: Progress, on_tick: Callable[[Progress], None], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        on_tick(progress)


async def _run(target: Target, spec: LoadSpec, on_tick: Callable[[Progress], None] | None,
               tick_s: float) -> Raw:
    run = _Run(target, spec)
    ticker = asyncio.create_task(_ticker(run.progress, on_tick, tick_s)) if on_tick else None
    try:
        run.raw.started = run.t0
        await (run.open() if spec.model == "open" else run.closed())
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.uncancel() > 0:
            raise
        run.raw.interrupted = True  # Ctrl-C: keep what was answered; in-flight requests are not measured
        await run.stop_workers()
    finally:
        run.raw.ended = clock()
        run.raw.connections = sum(c.connects for c in run.conns)
        for c in run.conns:
            c.close()
        await target.finished()  # a bus target's connection, on this loop
        if ticker:
            ticker.cancel()
    return run.raw


def run_load(target: Target, spec: LoadSpec, on_tick: Callable[[Progress], None] | None = None,
             tick_s: float = 0.5) -> Raw:
    """Run one load against target on a fresh uvloop event loop, at a raised priority when
    allowed; return the raw records."""
    import uvloop

    spec.check()
    with raised_priority() as priority, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raw = runner.run(_run(target, spec, on_tick, tick_s))
    raw.generator_nice, raw.generator_realtime = priority.nice, priority.realtime
    return raw
