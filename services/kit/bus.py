"""NATS and JetStream: the connection, the streams, publishing and durable consumers.

Every subject family lives in one JetStream stream (services.contract.STREAMS), so
nothing acknowledged is lost and consumers can replay. The streams and the durable
consumers are the operator's (services/provision.py makes them at `up`): a service binds
to its own durables and never creates, changes or deletes either. Publishing sets Nats-Msg-Id to
the event id: JetStream drops a duplicate publish inside the duplicate window.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamInfo
from nats.js.errors import NotFoundError

from services import contract

__all__ = [
    "MALFORMED",
    "PUBLISHES",
    "STREAMS",
    "BatchHandler",
    "Handler",
    "Malformed",
    "MissingDurable",
    "PublishRecord",
    "Redeliver",
    "connect",
    "cursor_consumer",
    "decode",
    "decode_each",
    "decode_execution",
    "decode_payload",
    "decode_venue_order",
    "durable_consumer",
    "each",
    "identity_of",
    "legacy_identity",
    "publish_event",
    "reconnects",
    "round_trip",
    "stream_for",
    "stream_identity",
]

log = logging.getLogger(__name__)

STREAMS = contract.STREAMS
stream_for = contract.stream_for


async def connect(url: str, name: str, *, user: str | None = None, password: str | None = None,
                  read_every: float = 0.0) -> NATS:
    """A connection that reconnects forever: a NATS restart never needs a service restart.

    `read_every` > 0: read the socket at most that often (see `_read_in_batches`)."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats: %s", exc)

    async def on_reconnect() -> None:
        _read_in_batches(nc, read_every)  # the client reads a new socket now

    nc = await nats.connect(
        servers=[url], name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
        connect_timeout=2, allow_reconnect=True, error_cb=on_error,
        reconnected_cb=on_reconnect if read_every > 0 else None,
        inbox_prefix=contract.inbox_prefix(name),
        **({"user": user or name, "password": password} if password else {}),
    )
    if read_every > 0:
        _read_in_batches(nc, read_every)
    return nc


def _read_in_batches(nc: NATS, every: float) -> None:
    """After each read, leave the socket unread for `every` seconds, then take all that came.

    For a service that only follows the flow (kit.FollowerSettings): each read
    wakes the process once and runs the client's read loop, parser and dispatch once, so
    one read of the messages that came in 20 ms costs much less than a read for each (a
    consumer that only acks: 180-210 -> 130-160 us of CPU a message at 200/s). A message
    after a quiet spell is read at once; the next waits up to `every`. Nothing is lost:
    the kernel holds what arrives (the server, its buffer) while reading is paused.
    Uses the client's private transport: nats-py reads through `transport.read`, and a
    reconnect opens a new socket under the same transport object (or, in some versions, a
    new transport: hence the reconnected callback in `connect`). So the socket to pause
    is looked up at each read, never kept: a kept one is the closed socket after a
    reconnect, and the new one was read a message at a time.
    Measured with nats-py 2.16, pinned there (pyproject.toml: nats-py<2.17); a canary test
    (tests/test_bypasses.py) fails when the private parts it uses move.
    """
    transport: Any = nc._transport  # private (see the docstring): a TcpTransport, or None
    if getattr(transport, "_io_writer", None) is None or getattr(transport, "_read_every", None) == every:
        return
    read = transport.read
    loop = asyncio.get_running_loop()
    due = 0.0

    async def batched_read(size: int) -> bytes:
        nonlocal due
        wait = due - loop.time()
        socket_side: asyncio.Transport = transport._io_writer.transport
        if wait > 0 and not socket_side.is_closing():
            socket_side.pause_reading()
            try:
                await asyncio.sleep(wait)
            finally:
                if not socket_side.is_closing():
                    socket_side.resume_reading()
        data: bytes = await read(size)
        due = loop.time() + every
        return data

    transport.read = batched_read
    transport._read_every = every


async def round_trip(nc: NATS, timeout: float) -> None:
    """One request answered by the server: everything written before it has arrived and
    the connection still reads. Never `nc.flush(timeout)` for this: nats-py leaves a
    timed-out flush's cancelled PONG future queued, the late PONG raises InvalidStateError
    in the client's read loop, which ends it, and the connection then looks connected
    while it reads nothing again (seen after a 25 s NATS stop: every publish and request of
    every service timed out for minutes). A late answer to a timed-out request is dropped.
    The JetStream API answers `$JS.API.INFO`; without JetStream, "no responders" is the
    server's answer, a round trip all the same.
    """
    with contextlib.suppress(nats.errors.NoRespondersError):
        await nc.request("$JS.API.INFO", b"", timeout=timeout)


async def stream_identity(js: JetStreamContext, stream: str) -> str:
    """"NAME@created": sequences start again at 1 in a stream created anew (its store
    wiped), so a position kept by sequence is only meaningful with this next to it.
    `created` to the microsecond: a NATS restarted with a wiped store recreates the stream
    within the same second often enough (whole seconds made the new stream the old one, so
    a ledger's cursor skipped its first fills)."""
    return identity_of(stream, await js.stream_info(stream))


def identity_of(stream: str, info: StreamInfo) -> str:
    """`stream_identity` from a stream's info already read."""
    return f"{stream}@{info.created.timestamp():.6f}" if info.created else stream


def legacy_identity(identity: str) -> str:
    """What `stream_identity` said for the same stream before it kept microseconds
    ("NAME@seconds"): positions kept under it by an earlier version are still that
    stream's. (A stream created later never has an earlier stream's second.)"""
    return identity.partition(".")[0]  # a stream name has no "."


T = TypeVar("T")
# Messages that did not decode as their contract payload, by family: one count per process
# (a process is one service), exported as bus_malformed_messages_total.
MALFORMED: collections.Counter[str] = collections.Counter()


class Malformed(ValueError):
    """A message that is not its contract payload. It would never decode, so it is never
    redelivered: `each`, `decode_each` and the sink acknowledge it once it is counted."""


def decode(msg: Msg, type_: type[T]) -> T:
    """The one way a consumer reads a message: bytes -> the contract Struct `type_`.

    What does not decode is logged and counted here (MALFORMED) and raised as `Malformed`."""
    return _read(msg, lambda data: contract.decode(data, type_))


def decode_venue_order(msg: Msg) -> contract.VenueNew | contract.VenueCancel:
    """A `venue.paper.order` instruction: new or cancel, by its `action` tag."""
    return _read(msg, contract.decode_venue_order)


def _read(msg: Msg, read: Callable[[bytes], T]) -> T:
    try:
        return read(msg.data)
    except (ValueError, KeyError) as exc:  # KeyError: a subject of no family
        try:
            family = contract.family_of(msg.subject).name
        except KeyError:
            family = "unknown"
        MALFORMED[family] += 1
        log.warning("malformed %s message on %s, acknowledged and dropped: %s: %.200r", family,
                    msg.subject, exc, msg.data)
        raise Malformed(f"{msg.subject}: {exc}") from None


def decode_payload(msg: Msg) -> msgspec.Struct:
    """A message as its subject's family's payload (services.contract.FAMILIES), for a
    reader of several families (a lake sink); narrow it with isinstance."""
    payload: msgspec.Struct = _read(
        msg, lambda data: contract.decode(data, contract.family_of(msg.subject).payload))
    return payload


def decode_execution(msg: Msg) -> contract.Fill | contract.Cancelled:
    """A message of the EXEC stream: a fill or a venue's cancel, by its subject."""
    if contract.is_fill(msg.subject):
        return decode(msg, contract.Fill)
    return decode(msg, contract.Cancelled)


def decode_each(msgs: list[Msg], type_: type[T]) -> list[tuple[Msg, T]]:
    """Each message with its payload; a malformed one is left out (and so acknowledged)."""
    out = []
    for msg in msgs:
        with contextlib.suppress(Malformed):
            out.append((msg, decode(msg, type_)))
    return out


@dataclass
class PublishRecord:
    """How this process's JetStream publishes fare: /health fails while they fail (a full
    disk under the NATS store made every publish fail while /health said pass)."""

    failing_since: float | None = None  # time.time() of the first failure since the last success
    error: str = ""
    subject: str = ""

    def ok(self) -> None:
        self.failing_since = None

    def failed(self, subject: str, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.time()
        self.error, self.subject = f"{type(exc).__name__}: {exc}".rstrip(": "), subject


PUBLISHES = PublishRecord()  # one per process: a process is one service


async def publish_event(js: JetStreamContext, subject: str, event: contract.Event,
                        event_id: str | None = None, timeout: float = 2.0) -> int:
    """The one way a service publishes: a contract Struct, encoded here, with its id as
    Nats-Msg-Id; waits for JetStream's ack and returns the stream sequence. The outcome is
    kept in PUBLISHES."""
    data = contract.encode(event)
    headers = {"Nats-Msg-Id": event_id or event.id}
    try:
        ack = await js.publish(subject, data, timeout=timeout, headers=headers)
    except Exception as exc:
        PUBLISHES.failed(subject, exc)
        raise
    PUBLISHES.ok()
    return ack.seq


Handler = Callable[[Msg], Awaitable[None]]
# Handles a batch of messages, in the order they arrived; returns the ones it could not
# apply yet (to be redelivered later), or None when every one is done. Raising redelivers
# the whole batch.
BatchHandler = Callable[[list[Msg]], Awaitable[Collection[Msg] | None]]


def reconnects(js: JetStreamContext) -> int:
    """How many times the connection behind `js` has reconnected.

    A subscription can be silently lost when the server restarts (nats.py issue #504):
    consumer loops compare this before each batch and subscribe again when it moved.
    """
    return int(js._nc.stats["reconnects"])  # the context keeps its connection privately


class Redeliver(Exception):
    """Raised by a handler that cannot apply a message yet (e.g. a fill before its order).

    The message is redelivered later; this is flow, not a failure, so no traceback is logged.
    """


# After a message arrives alone, a consumer waits this long for more before handling it:
# at a few hundred messages a second, one wake-up (and one round of acks and Valkey
# calls) then serves several messages. Consumers follow the flow; none is on the path
# that answers an order, so 5 ms more there is cheap for the CPU it saves.
LINGER_S = 0.005
# Consumers that only follow the flow (analytics, the position ledger, views for readers)
# wait longer, since a batch of five costs about what one does (A/B at 200 orders/s with
# every consumer at 25 ms: ptrc 0.50 -> 0.25 ms of CPU an order, execution-quality
# 0.44 -> 0.30, nats 1.07 -> 0.80; the OMS's order status, 1.25 -> 1.16 ms for the whole
# OMS). Those on the way from an order to its fill (exeq, the venue: ROUTE_LINGER_S) and
# risk's own views do not; risk's position limits see a fill up to this much later (25 ms,
# against ptrc's commit and snapshot publish), and GET /orders/{id} says FILLED up to 25 ms
# later.
FOLLOW_LINGER_S = 0.025
# The way from an order to its fill lingers once, at its entry: exeq batches orders.new for
# ROUTE_LINGER_S (at 200 orders/s two orders a batch share one oms.gate ask, one
# write of venue instructions and one of acks) and publishes a batch's instructions at
# once, so the venue, which reads only those, takes what arrived after VENUE_LINGER_S (the
# rest of one exeq batch on the wire): the two waits together are what exeq's and the
# venue's 5 ms each were, and the venue's batches are exeq's instead of one order each.
ROUTE_LINGER_S = 0.009
VENUE_LINGER_S = 0.001


class _Inbox:
    """Messages pushed by the server, taken by the consumer loop a batch at a time.

    A callback that only appends is cheaper than `next_msg` (a task and a timer per
    message), and everything that arrived while a batch was handled is taken at once.
    A batch is taken when it holds `limit` messages or its oldest message is `linger`
    old, also when messages were already waiting: else, under a steady flow, every
    batch was the one or two messages that arrived during the last (a lake sink then
    made a Delta commit per order event: event-writer's CPU per order went 0.3 -> 1.5 ms).
    """

    def __init__(self, limit: int, linger: float = LINGER_S) -> None:
        self.limit = limit
        self.linger = linger
        self.msgs: list[Msg] = []
        self.arrived: list[float] = []  # when each held message arrived (monotonic)
        self.ready = asyncio.Event()
        self.full = asyncio.Event()

    async def put(self, msg: Msg) -> None:
        self.msgs.append(msg)
        self.arrived.append(time.monotonic())
        self.ready.set()
        if len(self.msgs) >= self.limit:
            self.full.set()

    async def take(self, timeout: float) -> list[Msg]:
        if not self.msgs:
            try:
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
            except TimeoutError:
                return []
        left = self.arrived[0] + self.linger - time.monotonic() if self.msgs else 0.0
        if left > 0 and len(self.msgs) < self.limit:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self.full.wait()
        batch, self.msgs = self.msgs[:self.limit], self.msgs[self.limit:]
        del self.arrived[:len(batch)]
        if not self.msgs:
            self.ready.clear()
        if len(self.msgs) < self.limit:
            self.full.clear()
        return batch


class MissingDurable(Exception):
    """The operator has not made this durable (`trade-ops up` makes every one)."""


async def _push_subscribe(js: JetStreamContext, durable: contract.Durable, inbox: _Inbox) -> Any:
    """Bind to the operator's durable push consumer (it delivers into this service's inbox).
    A service may not create one: a missing durable is said, and looked for again."""
    try:
        info = await js.consumer_info(durable.stream, durable.name)
    except NotFoundError:
        raise MissingDurable(f"no durable {durable.name} on {durable.stream}: the operator makes it "
                             "(trade-ops up)") from None
    return await js.subscribe_bind(durable.stream, info.config, durable.name, cb=inbox.put, manual_ack=True)


def each(handle: Handler, name: str) -> BatchHandler:
    """A batch handler from a handler of one message: each message on its own, the ones
    that raise are redelivered later (a traceback is logged unless it raised Redeliver)."""

    async def handle_batch(msgs: list[Msg]) -> list[Msg]:
        again = []
        for msg in msgs:
            try:
                await handle(msg)
            except asyncio.CancelledError:
                raise
            except Malformed:
                pass  # counted and logged by decode; acknowledged
            except Redeliver as exc:
                log.info("consumer %s: %s; redelivering later", name, exc)
                again.append(msg)
            except Exception:
                log.exception("consumer %s: handler failed; redelivering", name)
                again.append(msg)
        return again

    return handle_batch


async def _settle(msgs: list[Msg], again: Collection[Msg]) -> None:
    """Ack what was handled, nak (with a delay) what is to come again."""
    later = {id(m) for m in again}
    for msg in msgs:
        if id(msg) in later:
            await msg.nak(delay=1.0)
        else:
            await msg.ack()


async def _keep_held(held: Callable[[], list[Msg]], every: float) -> None:
    """Every `every` seconds, tell the server "still working" for each message held since
    the last look (being handled, or queued behind the batch being handled), so a backlog
    slower than ack_wait (= 3 x every) is not redelivered while its first copy waits: that
    made every message of it handled twice (seen in execution-quality after an outage:
    469 of 512 held messages redelivered)."""
    before: set[int] = set()
    while True:
        await asyncio.sleep(every)
        now = held()
        for msg in now:
            if id(msg) in before:
                with contextlib.suppress(Exception):  # at worst it comes again: handlers are idempotent
                    await msg.in_progress()
        before = {id(m) for m in now}


async def durable_consumer(js: JetStreamContext, durable: contract.Durable, *,
                           handle: Handler | None = None, handle_batch: BatchHandler | None = None,
                           batch: int = 256, linger: float = LINGER_S, fetch_timeout: float = 1.0,
                           bound: Callable[[], Awaitable[None]] | None = None,
                           idle: Callable[[], None] | None = None) -> None:
    """Handle every message of a durable consumer forever, in batches; ack each once handled.

    The consumer kind for side effects (writes, publishes, lake commits); `cursor_consumer`
    is the other kind, for state kept with its own stream position. Give `handle_batch`
    (a list of messages at a time: one Valkey pipeline, one commit per batch) or `handle`
    (one message at a time, see `each`). A batch is what arrived while the last one was
    handled, or, after a lull, what arrives within `linger` of its first message, at most
    `batch` messages.

    A push consumer: the server sends each message as it is stored, so there is no pull
    request per message (a pull fetch costs two requests and a status reply for every
    message that arrives alone), and up to `max_ack_pending` are in flight.
    A message not handled is nak'ed with a delay and redelivered; handlers must be
    idempotent by event id, since a crash between the work and the ack redelivers.
    The durable's `ack_wait_s` (the contract's, as the operator made it) is how long an
    unacked message (its consumer died) waits for redelivery; what is held longer than
    that (a backlog) is kept with "in progress" acks (`_keep_held`). `bound` runs after
    each (re)subscription, before any message of it is handled (e.g. to read what is
    already committed); `idle` when a wait found nothing.
    """
    if handle is not None and handle_batch is None:
        run = each(handle, durable.name)
    elif handle_batch is not None and handle is None:
        run = handle_batch
    else:
        raise TypeError("durable_consumer needs exactly one of handle and handle_batch")
    inbox = _Inbox(batch, linger)
    handling: list[Msg] = []
    keeper = asyncio.create_task(_keep_held(lambda: handling + inbox.msgs, durable.ack_wait_s / 3))
    try:
        await _consume(js, durable, inbox, handling, run, bound, idle, fetch_timeout)
    finally:
        keeper.cancel()


async def _consume(js: JetStreamContext, durable: contract.Durable, inbox: _Inbox, handling: list[Msg],
                   run: BatchHandler, bound: Callable[[], Awaitable[None]] | None,
                   idle: Callable[[], None] | None, fetch_timeout: float) -> None:
    sub = None
    seen = -1
    while True:
        try:
            if reconnects(js) != seen or sub is None:
                # First start, or NATS came back (maybe without our consumer): bind again.
                seen = reconnects(js)
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                    log.info("consumer %s: subscribing again after a reconnect", durable.name)
                sub = None
                sub = await _push_subscribe(js, durable, inbox)
                if bound is not None:
                    await bound()
            msgs = await inbox.take(fetch_timeout)
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                nats.errors.TimeoutError, TimeoutError, NotFoundError) as exc:
            log.warning("consumer %s: %s; retrying", durable.name, exc or type(exc).__name__)
            await asyncio.sleep(0.5)
            seen = -1
            continue
        except Exception as exc:  # e.g. JetStream not ready yet after a restart: subscribe again
            log.warning("consumer %s: %s: %s; subscribing again", durable.name, type(exc).__name__, exc)
            await asyncio.sleep(0.5)
            seen = -1
            continue
        if not msgs:
            if idle is not None:
                idle()
            continue
        handling[:] = msgs
        again: Collection[Msg]
        try:
            again = await run(msgs) or ()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("consumer %s: batch handler failed; redelivering %d", durable.name, len(msgs))
            again = msgs
        await _settle(msgs, again)
        handling.clear()


async def cursor_consumer(js: JetStreamContext, *, stream: str, subject: str,
                          cursor: Callable[[], Awaitable[int]],
                          handle: Callable[[list[Msg]], Awaitable[None]], name: str,
                          batch: int = 256, linger: float = LINGER_S, idle_heartbeat: float = 5.0,
                          first: DeliverPolicy = DeliverPolicy.ALL) -> None:
    """Read `subject` from the message after `cursor()` forever, in batches, in stream order.

    For a consumer that stores the last stream sequence it applied together with its
    state, in one transaction (exactly once by construction, like a Kafka offset kept
    with the data). The server keeps no state for it: an ordered consumer, no acks, and
    after any failure (a handler error, NATS or Valkey gone) the reader starts again from
    the stored cursor, so nothing is skipped and nothing is applied out of order.
    `linger`: as for `durable_consumer`. `first` is where a reader with no cursor yet (0)
    starts: LAST_PER_SUBJECT for a view that needs only the latest message of each subject
    (the latest tick of each symbol).
    """
    while True:
        inbox, sub = _Inbox(batch, linger), None
        try:
            start = await cursor()
            config = (ConsumerConfig(deliver_policy=first) if start == 0 and first != DeliverPolicy.ALL
                      else ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                          opt_start_seq=start + 1))
            seen = reconnects(js)
            sub = await js.subscribe(subject, stream=stream, cb=inbox.put, ordered_consumer=True,
                                     config=config, idle_heartbeat=idle_heartbeat)
            # After a reconnect the server may have lost the (in-memory) ordered consumer;
            # starting again from the cursor beats waiting for missed heartbeats to show it.
            while reconnects(js) == seen:
                msgs = await inbox.take(1.0)
                if msgs:
                    await handle(msgs)
            log.info("%s: reading again from the cursor after a reconnect", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: %s: %s; reading again from the cursor", name, type(exc).__name__, exc)
            await asyncio.sleep(0.5)
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
