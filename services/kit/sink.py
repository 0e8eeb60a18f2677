"""The one sink: the kit's durable consumer, appending batches to Delta tables.

    sink = Sink(kit, SinkSpec(durable=contract.TOPOLOGY["sink-ticks"].durable("sink-ticks"),
                              tables=[MARKET_TICKS], route=lambda subject, event: (MARKET_TICKS.name, row)),
                SinkShared.of(kit.metrics))

Batching: a batch is flushed when it holds `batch_size` messages or its first message is
`max_wait_s` old. Each table of a batch is one Delta commit; messages are acked only
after every commit of their batch succeeded. A failed write is retried with backoff on
the same batch (never nak'ed), so the sink never writes past a hole.

Exactly once: every row carries `_stream` (stream name @ creation time) and `_seq` (its
JetStream stream sequence). A crash between commit and ack redelivers messages that are
already in the table; the sink skips them. At start it loads the `_seq` values above the
consumer's ack floor (everything at or below it was acked, so committed and never
redelivered); while running it remembers what it committed and forgets what is acked.
Parquet min/max statistics on `_seq` keep that start-up read to the newest files.
A table with a `key` column also drops a row whose key it holds (the same fill or order
event published again under a new stream sequence, e.g. a venue outbox flushed after
JetStream's 2-minute duplicate window): the keys of the last KEY_WINDOW_S are read back at
start and remembered while running.

Health: `consumer:pending` (messages not yet acked) and `lake:lastWriteAge` (seconds since
the last commit): warn when data is waiting and nothing was written for `stale_after_s`,
fail while writes fail. The kit's own `nats:connection` check fails when NATS is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable
from fastapi import APIRouter, FastAPI, Request
from nats.aio.msg import Msg
from prometheus_client import Counter, Histogram

from services import contract, env
from services.kit import bus, lake
from services.kit.app import Kit, create_app, service_state
from services.kit.health import Check
from services.kit.metrics import Metrics
from services.kit.settings import FollowerSettings

__all__ = ["Sink", "SinkSettings", "SinkShared", "SinkSpec", "Sinks", "Table", "date_of", "sink_app"]

log = logging.getLogger(__name__)

KEY_WINDOW_S = 3600.0  # event ids kept for dedup: an hour of rows, at most KEY_MEMORY per table
KEY_MEMORY = 500_000
META = pa.schema([("_stream", pa.string()), ("_seq", pa.int64())])


class SinkSettings(FollowerSettings):
    """TRADE_OPS_SINK_BATCH_SIZE, _SINK_MAX_WAIT_S, _SINK_STALE_AFTER_S (the durable's
    ack wait and pending limit are the contract's: the operator makes it)."""

    sink_batch_size: int = 500
    sink_max_wait_s: float = 1.0
    sink_stale_after_s: float = 10.0
    sink_retry_max_s: float = 2.0


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema  # the event columns; `_stream` and `_seq` are added
    partition_by: tuple[str, ...] = ()
    # The column naming the event (fill id, order event id): a row whose key the table
    # already holds is a repeat (republished past JetStream's duplicate window) and is
    # dropped. Remembered for KEY_WINDOW_S (the rows written then, read back at start).
    key: str | None = None

    @property
    def full_schema(self) -> pa.Schema:
        return pa.unify_schemas([self.schema, META])


# (subject, payload: its family's contract Struct) -> (table name, row), or None for an
# event this sink does not keep.
Route = Callable[[str, msgspec.Struct], tuple[str, dict[str, Any]] | None]


@dataclass(frozen=True)
class SinkSpec:
    durable: contract.Durable  # the operator's durable it reads (the contract's)
    tables: Sequence[Table]
    route: Route

    @property
    def name(self) -> str:
        return self.durable.name

    @property
    def stream(self) -> str:
        return self.durable.stream


def date_of(ts_ms: float) -> str:
    """The UTC date of an epoch-ms timestamp: the `date` partition."""
    return datetime.fromtimestamp(ts_ms / 1000.0, UTC).strftime("%Y-%m-%d")


@dataclass
class SinkStats:
    rows_written: int = 0
    batches: int = 0
    duplicates_skipped: int = 0
    rejected: int = 0
    write_errors: int = 0
    last_write: float | None = None  # epoch s of the last commit
    last_error: str | None = None  # set while writes fail, cleared by a commit
    pending: int | None = None  # not yet acked, per the server
    # event ts -> its row committed, for the latest rows (publisher and sink share a clock)
    delays_ms: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def to_json(self) -> dict[str, Any]:
        delays = list(self.delays_ms)
        quantiles = np.percentile(delays, (50, 90, 99)) if delays else ()
        return {
            "rows_written": self.rows_written, "batches": self.batches,
            "duplicates_skipped": self.duplicates_skipped, "rejected": self.rejected,
            "write_errors": self.write_errors, "last_error": self.last_error,
            "last_write": datetime.fromtimestamp(self.last_write, UTC).isoformat()
            if self.last_write else None,
            "pending": self.pending,
            "commit_delay_ms": {"n": len(delays),
                                **{f"p{q}": round(float(v), 1) for q, v in zip((50, 90, 99), quantiles,
                                                                               strict=True)},
                                "max": round(max(delays), 1)}
            if delays else None,
        }


@dataclass(frozen=True, slots=True)
class SinkShared:
    """What the sinks of one app share: a lock per table (two sinks may write one table)
    and one pair of metrics, labelled by sink."""

    locks: dict[str, asyncio.Lock]
    rows: Counter
    delay: Histogram

    @classmethod
    def of(cls, metrics: Metrics) -> SinkShared:
        return cls({}, metrics.counter("sink_rows_total", "Rows committed to the lake", ("sink",)),
                   metrics.histogram("sink_commit_delay_seconds", "Event ts to its row committed",
                                     ("sink",), buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)))


class Sink:
    def __init__(self, kit: Kit, spec: SinkSpec, shared: SinkShared) -> None:
        self.kit, self.spec = kit, spec
        self.settings: SinkSettings = kit.settings  # type: ignore[assignment]
        self.tables = {t.name: t for t in spec.tables}
        self.stats = SinkStats()
        self.stream_id = spec.stream
        self.suffix = ""  # "/durable" when an app runs several sinks, to tell their checks apart
        self.committed: set[int] = set()  # stream seqs in the table, not yet known acked
        # per keyed table: the event ids it holds (recent ones), oldest first for forgetting
        self.keys: dict[str, tuple[set[str], deque[str]]] = {
            t.name: (set(), deque()) for t in spec.tables if t.key}
        # Every seq at or below the consumer's ack floor was acked, hence committed: a late
        # redelivery of one (e.g. held in a batch across a reconnect) is a duplicate.
        self.ack_floor = 0
        self.bound = False  # it has read what the table holds, and consumes
        self.started = time.time()
        self._locks = shared.locks
        self._lake = lake.Appender(self.settings.lake_uri)
        self.idle_at = time.time()  # the last time there was nothing to write
        self._crash_after = int(os.environ.get(env.SINK_CRASH_AFTER_COMMITS, "0"))
        self._rows, self._delay = shared.rows.labels(spec.name), shared.delay.labels(spec.name)

    # -- start-up ------------------------------------------------------------------------
    async def _bound(self) -> None:
        """After each (re)subscription: what the table already holds above the ack floor."""
        try:
            self.stream_id = await bus.stream_identity(self.kit.js, self.spec.stream)
            self.ack_floor = 0  # the server's word, from here on (a recreated stream starts again at 1)
            floor = await self.refresh_pending()
            self.committed = await asyncio.to_thread(self._committed_above, floor)
            for name, held in (await asyncio.to_thread(self._recent_keys)).items():
                self._remember(name, held)
        except Exception as exc:  # NATS or the lake not ready: health says so; the consumer retries
            self.stats.last_error = f"cannot start: {type(exc).__name__}: {exc}"[:300]
            raise
        if self.stats.last_error and self.stats.last_error.startswith("cannot start"):
            self.stats.last_error = None
        self.bound = True
        log.info("%s: %d rows above ack floor %d already committed", self.spec.name,
                 len(self.committed), floor)

    def _committed_above(self, floor: int) -> set[int]:
        seqs: set[int] = set()
        for table in self.spec.tables:
            if not lake.table_exists(self.settings.lake_uri, table.name):
                continue
            dataset = DeltaTable(lake.table_uri(self.settings.lake_uri, table.name)).to_pyarrow_dataset()
            # rows an earlier version wrote under the stream's identity in whole seconds are
            # this stream's too (bus.legacy_identity)
            ids = sorted({self.stream_id, bus.legacy_identity(self.stream_id)})
            found = dataset.to_table(columns=["_seq"], filter=ds.field("_stream").isin(ids)
                                     & (ds.field("_seq") > floor))
            seqs.update(found.column("_seq").to_pylist())
        return seqs

    def _recent_keys(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        since_ms = (time.time() - KEY_WINDOW_S) * 1000.0
        for table in self.spec.tables:
            if not table.key or not lake.table_exists(self.settings.lake_uri, table.name):
                continue
            dataset = DeltaTable(lake.table_uri(self.settings.lake_uri, table.name)).to_pyarrow_dataset()
            where = ds.field("ts") >= since_ms
            if "date" in table.partition_by:  # read only the partitions that can hold them
                where = where & (ds.field("date") >= date_of(since_ms))
            rows = dataset.to_table(columns=[table.key, "ts"], filter=where).sort_by("ts")
            found[table.name] = [k for k in rows.column(table.key).to_pylist() if k is not None]
        return found

    def _remember(self, name: str, keys: list[str]) -> None:
        held, order = self.keys[name]
        for k in keys:
            if k not in held:
                held.add(k)
                order.append(k)
        while len(order) > KEY_MEMORY:
            held.discard(order.popleft())

    async def refresh_pending(self) -> int:
        """Ask the server what is not yet acked; forget committed seqs at or below the ack floor."""
        info = await self.kit.js.consumer_info(self.spec.stream, self.spec.name)
        self.stats.pending = (info.num_pending or 0) + (info.num_ack_pending or 0)
        floor = info.ack_floor.stream_seq if info.ack_floor and info.ack_floor.stream_seq else 0
        self.ack_floor = max(self.ack_floor, floor)
        self.committed = {s for s in self.committed if s > floor}
        return floor

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """The kit's durable consumer, a batch per commit: at most `sink_batch_size`
        messages, or what arrived within `sink_max_wait_s` of the first."""
        settings = self.settings
        await bus.durable_consumer(
            self.kit.js, self.spec.durable, handle_batch=self._flush, batch=settings.sink_batch_size,
            linger=settings.sink_max_wait_s, bound=self._bound, idle=self._idle)

    def _idle(self) -> None:
        self.idle_at = time.time()

    async def _flush(self, batch: list[Msg]) -> None:
        """Commit the batch's rows; return (and so be acked) only once every commit succeeded."""
        with contextlib.suppress(Exception):  # forget what the last batch's acks made safe
            await self.refresh_pending()
        rows = self._rows_of(batch)
        delay = 0.25
        while True:
            try:
                await self._commit(rows)
                break
            except Exception as exc:
                self.stats.write_errors += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.error("%s: write failed, retrying: %s", self.spec.name, self.stats.last_error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.sink_retry_max_s)
                for msg in batch:  # keep the batch ours while we retry
                    await msg.in_progress()
        if self._crash_after and self.stats.batches >= self._crash_after:
            os._exit(137)  # fault injection for tests: die after a commit, before the ack

    def _rows_of(self, batch: list[Msg]) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {}
        seen: set[int] = set()
        batch_keys: set[tuple[str, str]] = set()
        for msg in batch:
            seq = msg.metadata.sequence.stream
            if seq <= self.ack_floor or seq in self.committed or seq in seen:
                self.stats.duplicates_skipped += 1
                continue
            seen.add(seq)
            try:
                routed = self.spec.route(msg.subject, bus.decode_payload(msg))
            except bus.Malformed:  # counted and logged by the kit; acked with its batch
                self.stats.rejected += 1
                continue
            except Exception as exc:
                log.warning("%s: rejected seq %d on %s: %s", self.spec.name, seq, msg.subject, exc)
                self.stats.rejected += 1
                continue
            if routed is None:
                continue
            name, row = routed
            key = self.tables[name].key
            if key is not None and row.get(key) is not None:
                k = str(row[key])
                if k in self.keys[name][0] or (name, k) in batch_keys:
                    self.stats.duplicates_skipped += 1  # the same event again, under a new seq
                    continue
                batch_keys.add((name, k))
            row["_stream"], row["_seq"] = self.stream_id, seq
            rows.setdefault(name, []).append(row)
        return rows

    async def _commit(self, rows: dict[str, list[dict[str, Any]]]) -> None:
        for name, table_rows in list(rows.items()):
            table = self.tables[name]
            arrow = self._to_arrow(table, table_rows)
            async with self._locks.setdefault(name, asyncio.Lock()):  # two sinks, one table
                await asyncio.to_thread(self._lake.append, name, arrow, table.partition_by)
            del rows[name]  # committed: a retry of this batch must not write it again
            if table.key:
                self._remember(name, [str(k) for k in arrow.column(table.key).to_pylist() if k is not None])
            seqs = arrow.column("_seq").to_pylist()
            self.committed.update(seqs)
            now_ms = time.time() * 1000.0
            delays = [now_ms - ts for ts in arrow.column("ts").to_pylist() if ts is not None]
            for d in delays:
                self._delay.observe(d / 1000.0)
            self.stats.delays_ms.extend(delays)
            self.stats.rows_written += len(seqs)
            self._rows.inc(len(seqs))
        self.stats.batches += 1
        self.stats.last_write = time.time()
        self.stats.last_error = None

    def _to_arrow(self, table: Table, rows: list[dict[str, Any]]) -> pa.Table:
        schema = table.full_schema
        try:
            return pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            good = []
            for row in rows:  # one bad event must not block the stream: drop it, keep the rest
                try:
                    pa.Table.from_pylist([row], schema=schema)
                    good.append(row)
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
                    log.warning("%s: rejected seq %s: %s", table.name, row.get("_seq"), exc)
                    self.stats.rejected += 1
            return pa.Table.from_pylist(good, schema=schema)

    # -- health --------------------------------------------------------------------------
    async def pending_check(self) -> Check:
        await self.refresh_pending()
        if not self.bound:  # its durable exists, but it has not read the table yet: not consuming
            return Check("consumer" + self.suffix, "pending", "warn", "component", self.stats.pending,
                         "messages", output="starting: reading what the lake already holds")
        return Check("consumer" + self.suffix, "pending", "pass", "component", self.stats.pending, "messages")

    async def write_check(self) -> Check:
        now = time.time()
        age = round(now - self.stats.last_write, 3) if self.stats.last_write else None
        if self.stats.last_error:
            return Check("lake" + self.suffix, "lastWriteAge", "fail", "datastore", age, "s",
                         output=f"writes to {self.settings.lake_uri} fail: {self.stats.last_error}")
        waiting = now - max(self.stats.last_write or self.started, self.idle_at)
        if self.stats.pending and waiting > self.settings.sink_stale_after_s:
            return Check("lake" + self.suffix, "lastWriteAge", "warn", "datastore", age, "s",
                         output=f"{self.stats.pending} messages waiting and nothing written "
                                f"for {waiting:.1f}s")
        return Check("lake" + self.suffix, "lastWriteAge", "pass", "datastore", age, "s")


@dataclass(frozen=True, slots=True)
class Sinks:
    """A sink service's state: its sinks, one per spec."""

    all: list[Sink]


def sink_app(name: str, specs: Sequence[SinkSpec],
             settings: SinkSettings | None = None) -> FastAPI:
    """A whole sink service: the kit app, one Sink per spec, its checks and `GET /stats`."""
    settings = settings or SinkSettings(service=name)
    router = APIRouter()

    @router.get("/stats")
    async def stats(request: Request) -> dict[str, Any]:
        sinks = service_state(request, Sinks).all
        for sink in sinks:
            with contextlib.suppress(Exception):  # NATS down: the last known count, health says why
                await asyncio.wait_for(sink.refresh_pending(), settings.health_timeout_s)
        totals = {k: sum(s.stats.to_json()[k] or 0 for s in sinks)
                  for k in ("rows_written", "batches", "duplicates_skipped", "rejected", "pending")}
        writes = [s.stats.last_write for s in sinks if s.stats.last_write]
        last = datetime.fromtimestamp(max(writes), UTC).isoformat() if writes else None
        return {**totals, "last_write": last, "lake_uri": settings.lake_uri,
                "sinks": {s.spec.name: s.stats.to_json() for s in sinks}}

    @contextlib.asynccontextmanager
    async def lifespan(kit: Kit) -> AsyncIterator[Sinks]:
        shared = SinkShared.of(kit.metrics)
        sinks = [Sink(kit, spec, shared) for spec in specs]
        for sink in sinks:
            sink.suffix = "" if len(sinks) == 1 else f"/{sink.spec.name}"
            kit.add_check("consumer" + sink.suffix, sink.pending_check)
            kit.add_check("lake" + sink.suffix, sink.write_check, "datastore")
            kit.spawn(sink.run, sink.spec.name)
        yield Sinks(sinks)

    return create_app(name, settings=settings, routers=[router],
                      uses_valkey=False, lifespan=lifespan)
