"""Targets whose answer arrives on the bus, measured by the same load generator, histograms,
verdict and saved runs as every other target (the request's transport is all that differs):

    fill   a MARKET order through the OMS (`POST /orders`, the oms target's body), done when
           its final fill arrives on `exec.fill.{SYMBOL}`: risk, the OMS's three writes, exeq,
           the venue and its fill publish, end to end. An order answered 4xx/503 ends there.
    sink   one tick published on JetStream, done when sink-ticks has committed it to the lake
           and acked it (the consumer's ack floor reaches the tick's stream sequence). Its
           ticks name the symbol SINK_SYMBOL; on a full stack every tick consumer sees them,
           so measure it on `trade-ops up --only sink-ticks`.

Both read the stack trade-ops started (its NATS, as the CLI's own user), never a --url.
Each load has one NATS connection, opened on the load's event loop by its first request
and closed at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import nats
import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from services import contract
from services.contract import now_ms
from trade_ops.bench.client import Connection, ConnectionFailed, ProtocolFailed, RequestTimeout
from trade_ops.bench.target import Target, Transport

__all__ = ["COMMIT_POLL_S", "SINK_DURABLE", "SINK_SYMBOL", "NatsAccess", "fill_target", "sink_target"]

SINK_SYMBOL = "ZZBENCH"  # not a symbol of the universe: no venue or risk ever prices it
SINK_DURABLE = "sink-ticks"  # services/sink_ticks/app.py: the consumer whose ack floor is read
COMMIT_POLL_S = 0.005  # the sink's ack floor is read this often while ticks wait: resolution
EARLY_KEPT = 10_000  # final fills that came before their order's 201 was read


@dataclass(frozen=True)
class NatsAccess:
    url: str
    login: dict[str, str] = field(default_factory=dict)  # credentials.nats_login(run_dir)

    async def connect(self) -> NATS:
        try:
            return await nats.connect(servers=[self.url], name="trade-ops-bench", connect_timeout=2,
                                      max_reconnect_attempts=2, **self.login)
        except (OSError, nats.errors.Error) as exc:
            raise ConnectionFailed(f"NATS at {self.url}: {exc or type(exc).__name__}") from None


class _Bus:
    """A load's one NATS connection, opened by whichever request comes first."""

    def __init__(self, access: NatsAccess) -> None:
        self.access = access
        self.nc: NATS | None = None
        self._opening: asyncio.Task[NATS] | None = None

    async def open(self) -> NATS:
        if self.nc is not None:
            return self.nc
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self._opening)
        except ConnectionFailed:
            self._opening = None  # the next request tries again
            raise

    async def _open(self) -> NATS:
        nc = await self.access.connect()
        try:
            await self.subscribed(nc)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise ConnectionFailed(f"NATS at {self.access.url}: {exc or type(exc).__name__}") from None
        self.nc = nc
        return nc

    async def subscribed(self, nc: NATS) -> None:
        """What to set up on the connection before the first request uses it."""

    async def close(self) -> None:
        nc, self.nc, self._opening = self.nc, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 2)


# -- fill ----------------------------------------------------------------------------------
class _Fills(_Bus):
    """Final fills of one account's orders, each handed to the request waiting for it."""

    def __init__(self, access: NatsAccess, account: str) -> None:
        super().__init__(access)
        self.account = account
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.early: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first

    async def subscribed(self, nc: NATS) -> None:
        await nc.subscribe(contract.FILL_ALL, cb=self._on_fill)
        await nc.flush(timeout=2)  # subscribed at the server before the first order is sent

    async def _on_fill(self, msg: Msg) -> None:
        try:
            fill = orjson.loads(msg.data)
            if not fill.get("final") or fill.get("account") != self.account:
                return
            order_id = str(fill["order_id"])
        except (orjson.JSONDecodeError, AttributeError, KeyError):
            return
        waiter = self.waiting.pop(order_id, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        self.early[order_id] = None  # filled before its 201 was read: claimed right after
        if len(self.early) > EARLY_KEPT:
            del self.early[next(iter(self.early))]

    async def filled(self, order_id: str, timeout: float) -> None:
        if order_id in self.early:
            del self.early[order_id]
            return
        waiter = self.waiting[order_id] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            raise RequestTimeout from None
        finally:
            self.waiting.pop(order_id, None)


class _FillRequest:
    """POST /orders on a keep-alive connection; a 201 is done when its final fill arrives."""

    def __init__(self, http: Connection, fills: _Fills) -> None:
        self.http, self.fills = http, fills

    @property
    def connects(self) -> int:
        return self.http.connects

    async def request(self, data: bytes, timeout: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.fills.open()
        status, body = await self.http.request(data, timeout)
        if status != 201:
            return status, body  # rejected, invalid, unavailable: classified as the oms target's
        try:
            order_id = str(orjson.loads(body)["order_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ProtocolFailed(f"a 201 without an order_id: {body[:120]!r}") from None
        await self.fills.filled(order_id, max(timeout - (loop.time() - started), 0.001))
        return status, body

    def close(self) -> None:
        self.http.close()


def fill_target(orders: Target, access: NatsAccess, account: str) -> Target:
    """The oms target `orders` (its bodies, its classification), each order done at its fill."""
    fills: list[_Fills] = []  # the current load's

    def connect() -> Transport:
        if not fills:
            fills.append(_Fills(access, account))
        return _FillRequest(Connection(orders.host, orders.port), fills[0])

    async def finish() -> None:
        while fills:
            await fills.pop().close()

    return replace(orders, name="fill", connect=connect, finish=finish,
                   describe={**orders.describe, "kind": "fill",
                             "done_at": f"its final fill on {contract.FILL_ALL}"})


# -- sink ----------------------------------------------------------------------------------
class _Commits(_Bus):
    """Publishes ticks; tells each when the sink's consumer has acked past its sequence."""

    def __init__(self, access: NatsAccess, durable: str) -> None:
        super().__init__(access)
        self.durable = durable
        self.waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # heap by stream seq
        self.order = itertools.count()
        self.floor = 0
        self.poller: asyncio.Task[None] | None = None

    async def publish(self, tick: bytes, msg_id: str, timeout: float) -> int:
        nc = await self.open()
        try:
            ack = await nc.jetstream().publish(contract.tick_subject(SINK_SYMBOL), tick, timeout=timeout,
                                               headers={"Nats-Msg-Id": msg_id})
        except nats.errors.TimeoutError:
            raise RequestTimeout from None
        except nats.errors.Error as exc:
            raise ConnectionFailed(f"publish to {contract.TICKS}: {exc or type(exc).__name__}") from None
        return int(ack.seq)

    async def committed(self, seq: int, timeout: float) -> None:
        if seq <= self.floor:
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (seq, next(self.order), waiter))
        if self.poller is None or self.poller.done():
            self.poller = asyncio.ensure_future(self._poll())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            waiter.cancel()  # done: the poller drops it
            raise RequestTimeout from None

    async def _poll(self) -> None:
        js = (await self.open()).jetstream()
        while self.waiting:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                info = await js.consumer_info(contract.TICKS, self.durable, timeout=1)
                self.floor = max(self.floor, info.ack_floor.stream_seq if info.ack_floor else 0)
            while self.waiting and (self.waiting[0][0] <= self.floor or self.waiting[0][2].done()):
                waiter = heapq.heappop(self.waiting)[2]
                if not waiter.done():
                    waiter.set_result(None)
            await asyncio.sleep(COMMIT_POLL_S)

    async def close(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            await asyncio.gather(self.poller, return_exceptions=True)
        await super().close()


class _TickRequest:
    """The request is the tick itself (the target's body); done when the sink has it."""

    connects = 0

    def __init__(self, commits: _Commits) -> None:
        self.commits = commits

    async def request(self, data: bytes, timeout: float) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        msg_id = str(orjson.loads(data)["id"])
        seq = await self.commits.publish(data, msg_id, timeout)
        await self.commits.committed(seq, max(timeout - (loop.time() - started), 0.001))
        return 200, b""

    def close(self) -> None:
        pass


def _tick_body(run_id: str) -> Callable[[int], bytes]:
    def body(i: int) -> bytes:
        return orjson.dumps({"id": f"bench-{run_id}-{i}", "symbol": SINK_SYMBOL, "seq": i, "bid": 99.99,
                             "ask": 100.01, "last": 100.0, "bid_size": 1.0, "ask_size": 1.0,
                             "volume": 0.0, "ts": now_ms()})

    return body


def sink_target(sink_url: str, host: str, port: int, access: NatsAccess, run_id: str) -> Target:
    """Ticks to the running sink-ticks at `sink_url` (host, port: where it answers HTTP)."""
    commits: list[_Commits] = []

    def connect() -> Transport:
        if not commits:
            commits.append(_Commits(access, SINK_DURABLE))
        return _TickRequest(commits[0])

    async def finish() -> None:
        while commits:
            await commits.pop().close()

    done = "the sink's ack floor reaches it (committed to the lake, then acked)"
    return Target("sink", sink_url, "PUBLISH", host, port, contract.tick_subject(SINK_SYMBOL),
                  body=_tick_body(run_id), framed=False, connect=connect, finish=finish,
                  describe={"kind": "sink", "method": "PUBLISH", "url": sink_url,
                            "subject": contract.tick_subject(SINK_SYMBOL), "done_at": done})

