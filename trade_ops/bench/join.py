"""Workers on other hosts meet their coordinator on the stack's NATS.

    worker:       trade-ops bench worker --shard i/N --join nats://HOST:4222
    coordinator:  trade-ops bench oms --workers N --runtime nats   (the stack's NATS, --stack)

Both connect as the bench user (credentials.BENCH_USER), whose permissions allow the
subjects under trade-ops.bench. and nothing else (permissions.bench_permissions): control
traffic never mixes with the subjects being measured, and no service can see it.

    trade-ops.bench.ready                  worker -> coordinator, every READY_EVERY_S until it
                                           has a job: {"worker", "shard", "shards", "host", "address"}
    trade-ops.bench.job.<worker>           coordinator -> that worker, once all N shards are
                                           there (the ready barrier): {"job"} with one start
                                           time for all, or {"refused": why}
    trade-ops.bench.result.<run>.<shard>   worker -> coordinator: its result document in chunks
                                           (header Chunk: "i/n"), within NATS's max payload

No scheduler: whatever runs the workers (hosts, containers, a Kubernetes Indexed Job whose
JOB_COMPLETION_INDEX is the shard) only has to start them; the coordinator waits for them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import msgspec
import orjson

from services import env
from trade_ops.bench.worker import Job, WorkerResult, read_result, run_shard
from trade_ops.errors import StartupError, UsageError

if TYPE_CHECKING:
    from pathlib import Path

    import nats.aio.client
    import nats.aio.msg

__all__ = ["JOIN_TIMEOUT_S", "NatsFleet", "bench_login", "join_run"]

PREFIX = "trade-ops.bench"
READY, JOB, RESULT = f"{PREFIX}.ready", f"{PREFIX}.job", f"{PREFIX}.result"
READY_EVERY_S = 0.5
JOIN_TIMEOUT_S = 120.0  # how long a coordinator waits for its N workers, and a worker for a job
START_DELAY_S = 2.0  # from the barrier to the start: each worker builds its target meanwhile
T = TypeVar("T")


def bench_login(run_dir: Path | None = None) -> dict[str, str]:
    """The bench user's NATS login: from the stack's credentials in run_dir when there are
    some, else TRADE_OPS_NATS_USER / TRADE_OPS_NATS_PASSWORD (a worker's pod, another host)."""
    from trade_ops import credentials

    creds = credentials.load(run_dir) if run_dir is not None else None
    if creds is not None and credentials.BENCH_USER in creds.nats:
        return {"user": credentials.BENCH_USER, "password": creds.nats[credentials.BENCH_USER]}
    password = os.environ.get(env.setting_var("nats_password"))
    if not password:
        return {}
    return {"user": os.environ.get(env.NATS_USER, credentials.BENCH_USER), "password": password}


def _local_address(url: str) -> str:
    """This host's address on the way to the NATS server (how the coordinator names it)."""
    parts = urlsplit(url)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((parts.hostname or "127.0.0.1", parts.port or 4222))
            return str(s.getsockname()[0])
        except OSError:
            return "unknown"


async def _connect(url: str, login: dict[str, str], name: str) -> nats.aio.client.Client:
    import nats
    from nats.errors import Error as NatsError

    from services.contract import inbox_prefix
    from trade_ops.credentials import BENCH_USER

    try:
        return await nats.connect(url, name=name, connect_timeout=5, max_reconnect_attempts=3,
                                  allow_reconnect=True, inbox_prefix=inbox_prefix(BENCH_USER), **login)
    except (OSError, NatsError, TimeoutError) as exc:
        raise StartupError(f"cannot join through NATS at {url}: {exc or type(exc).__name__}") from None


# -- the worker ---------------------------------------------------------------------------
async def _await_job(url: str, login: dict[str, str], shard: int, shards: int) -> Job:
    nc = await _connect(url, login, f"bench-worker-{shard}")
    me = uuid.uuid4().hex[:12]
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_job(msg: nats.aio.msg.Msg) -> None:
        if not got.done():
            got.set_result(msg.data)

    await nc.subscribe(f"{JOB}.{me}", cb=on_job)
    hello = orjson.dumps({"worker": me, "shard": shard, "shards": shards, "host": socket.gethostname(),
                          "address": _local_address(url)})
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    try:
        while not got.done():
            if time.monotonic() > deadline:
                raise StartupError(f"no coordinator sent a job within {JOIN_TIMEOUT_S:g} s on {url}")
            await nc.publish(READY, hello)
            await asyncio.wait([got], timeout=READY_EVERY_S)
    finally:
        await nc.close()
    answer = orjson.loads(got.result())
    if "refused" in answer:
        raise UsageError(f"the coordinator refused shard {shard}/{shards}: {answer['refused']}")
    return Job.from_json(answer["job"])


async def _send_result(url: str, login: dict[str, str], doc: WorkerResult) -> None:
    nc = await _connect(url, login, f"bench-worker-{doc.shard}")
    try:
        data = msgspec.json.encode(doc)
        size = max(nc.max_payload - 4096, 1024)
        chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
        subject = f"{RESULT}.{doc.run_id}.{doc.shard}"
        for i, chunk in enumerate(chunks):
            await nc.publish(subject, chunk, headers={"Chunk": f"{i}/{len(chunks)}"})
        await nc.flush(timeout=10)
    finally:
        await nc.close()


def join_run(url: str, shard: int, shards: int) -> WorkerResult:
    """Wait for the coordinator's job, run this shard, send the result; the result document."""
    login = bench_login()
    job = asyncio.run(_await_job(url, login, shard, shards))
    doc = run_shard(job, shard)
    asyncio.run(_send_result(url, login, doc))
    return doc


# -- the coordinator ----------------------------------------------------------------------
@dataclass
class _Remote:
    """A worker that joined: where it runs, and its result as it arrives."""

    shard: int
    host: str
    address: str
    chunks: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None

    @property
    def where(self) -> str:
        return f"{self.address} ({self.host})"

    def ended(self) -> str | None:
        return "reported" if self.total is not None and len(self.chunks) == self.total else None

    def stop(self) -> None:
        """A remote worker is stopped by whatever started it; its missing result is named."""

    def result(self) -> WorkerResult | None:
        if self.ended() is None:
            return None
        return read_result(b"".join(self.chunks[i] for i in range(len(self.chunks))))


class NatsFleet:
    """N workers that join through NATS; `start` is the ready barrier, then one start time."""

    def __init__(self, url: str, login: dict[str, str], timeout_s: float = JOIN_TIMEOUT_S) -> None:
        self.url, self.login, self.timeout_s = url, login, timeout_s
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-nats", daemon=True)
        self.nc: nats.aio.client.Client | None = None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self, job: Job) -> list[_Remote]:
        """Wait until shards 0..N-1 have each joined, then send all of them the job with
        one start time; the workers, by shard."""
        self.thread.start()
        return self._call(self._start(job))

    async def _start(self, job: Job) -> list[_Remote]:
        self.nc = nc = await _connect(self.url, self.login, "bench-coordinator")
        joined: dict[int, tuple[str, _Remote]] = {}
        complete = asyncio.Event()

        async def on_ready(msg: nats.aio.msg.Msg) -> None:
            hello = orjson.loads(msg.data)
            shard, worker = int(hello["shard"]), str(hello["worker"])
            if shard in joined and joined[shard][0] == worker:
                return
            why = None
            if hello["shards"] != job.shards:
                why = f"this run has {job.shards} shards, not {hello['shards']}"
            elif shard in joined:
                why = f"shard {shard} already joined from {joined[shard][1].where}"
            if why is not None:
                await nc.publish(f"{JOB}.{worker}", orjson.dumps({"refused": why}))
                return
            joined[shard] = (worker, _Remote(shard, str(hello["host"]), str(hello["address"])))
            if len(joined) == job.shards:
                complete.set()

        ready = await nc.subscribe(READY, cb=on_ready)
        try:
            await asyncio.wait_for(complete.wait(), self.timeout_s)
        except TimeoutError:
            missing = [str(i) for i in range(job.shards) if i not in joined]
            raise StartupError(f"shard(s) {', '.join(missing)} of {job.shards} never joined through "
                               f"{self.url} within {self.timeout_s:g} s",
                               detail="start them: trade-ops bench worker --shard i/N --join URL") from None
        finally:
            await ready.unsubscribe()
        remotes = [joined[i][1] for i in range(job.shards)]

        async def on_result(msg: nats.aio.msg.Msg) -> None:
            shard = int(msg.subject.rsplit(".", 1)[1])
            i, n = (int(x) for x in (msg.headers or {}).get("Chunk", "0/1").split("/"))
            if 0 <= shard < len(remotes):
                remotes[shard].chunks[i], remotes[shard].total = msg.data, n

        await nc.subscribe(f"{RESULT}.{job.run_id}.*", cb=on_result)
        job.start_at = time.time() + START_DELAY_S
        for i in range(job.shards):
            await nc.publish(f"{JOB}.{joined[i][0]}", orjson.dumps({"job": job.to_json()}))
        await nc.flush()
        return remotes

    def close(self) -> None:
        if self.nc is not None:
            self._call(self.nc.close(), 10)
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        self.loop.close()
