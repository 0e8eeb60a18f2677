"""Reconciliation: do fills, orders, positions and the lake agree? (beyond any health check)

For the stack's own services. Over a sample window (the last N messages of the EXEC
stream, default 10,000) and a time budget:

    unknown orders      fills whose order the OMS does not hold
    errored orders      orders the OMS answered with an error (REJECTED) that have fills
    lake duplicates     fill ids written more than once to the `fills` Delta table
    missing in lake     fills in the stream (older than the sinks' batching) not in the lake
    positions           ptrc's positions against the sum of the fills, when the window
                        holds the stream's whole history (otherwise not compared, and said)

Gathering reads NATS, Valkey, the lake and ptrc, and deltalake holds the GIL: it runs in
a child process that doctor kills at its deadline:

    python -m trade_ops.doctor.reconcile '{"nats": ..., "valkey": ..., ...}'  ->  JSON
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from trade_ops.doctor.model import CheckResult

if TYPE_CHECKING:  # not imported by the child, whose start is on doctor's path
    from trade_ops.doctor.target import Target

__all__ = ["DEFAULT_WINDOW", "LAKE_GRACE_S", "check_reconcile", "gather", "judge", "positions_of", "slim",
           "stream_fills"]

DEFAULT_WINDOW = 10_000
LAKE_GRACE_S = 10.0  # the sinks write in batches: younger fills may not be in the lake yet
EXAMPLES = 3
_SIGN = {"buy": 1.0, "sell": -1.0, "BUY": 1.0, "SELL": -1.0}


def _logins(where: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The CLI's own NATS and valkey users, read here from the run directory (never passed
    on the command line, where `ps` would show them)."""
    from pathlib import Path

    from trade_ops import credentials

    if not where.get("logins"):
        return {}, {}
    logins = Path(where["logins"])  # Target.logins: the run directory or a compose project's
    valkey = credentials.valkey_login(logins)
    return credentials.nats_login(logins), ({"username": valkey[0], "password": valkey[1]} if valkey else {})


READ_TIMEOUT_S = 5.0  # a stream that stops delivering mid-read: what came is judged, as a part


def _stored_at_s(reply: str) -> float:
    """When the stream stored a message, from its JetStream reply subject (ADR-15:
    $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ns>.<pending>, or with a domain
    and account hash before the stream and a token after the pending count)."""
    tokens = reply.split(".")
    return int(tokens[7] if len(tokens) == 9 else tokens[9]) / 1e9


async def stream_fills(nc: Any, stream: str, subject: str, window: int
                       ) -> tuple[list[dict[str, Any]], bool] | None:
    """The JSON messages on `subject` among the last `window` of `stream`, and whether that is
    all of it; None when there is no such stream. Each carries `_age_s`, its age in the stream.

    One pull request for the whole window, its messages kept as they arrive on a callback
    (nats-py's fetch awaits each message with a timeout of its own: 4x slower on 10,000);
    decoded after, with orjson."""
    import orjson
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError

    js = nc.jetstream()
    try:
        state = (await js.stream_info(stream)).state
    except NotFoundError:
        return None
    if not state.messages:
        return [], True
    start = max(state.first_seq, state.last_seq - window + 1)
    config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                            ack_policy=AckPolicy.NONE, filter_subject=subject, inactive_threshold=10.0,
                            mem_storage=True)
    consumer = await js.add_consumer(stream, config)
    pending = consumer.num_pending or 0
    raw: list[tuple[bytes, str]] = []
    done = asyncio.get_running_loop().create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    async def got(msg: Any) -> None:
        if msg.headers and msg.headers.get("Status") and not msg.data:  # 404/408: no more
            finish()
            return
        raw.append((msg.data, msg.reply))
        if len(raw) >= pending:
            finish()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=got, pending_msgs_limit=0, pending_bytes_limit=0)
    try:
        if pending:
            request = orjson.dumps({"batch": pending, "no_wait": True})
            await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer.name}", request, reply=inbox)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, READ_TIMEOUT_S)
    finally:
        await sub.unsubscribe()
        with contextlib.suppress(Exception):  # gone now, not after its inactive threshold
            await js.delete_consumer(stream, consumer.name)
    now = time.time()
    fills: list[dict[str, Any]] = []
    for data, reply in raw:
        try:
            fill = orjson.loads(data)
        except orjson.JSONDecodeError:  # not JSON: not a fill doctor can read
            continue
        if isinstance(fill, dict):
            fill["_age_s"] = now - _stored_at_s(reply)
            fills.append(fill)
    return fills, start == state.first_seq and len(raw) >= pending


async def _stream_fills(nats_url: str, window: int, login: dict[str, str] | None = None
                        ) -> tuple[list[dict[str, Any]], bool]:
    """The fills among the last `window` messages of EXEC, and whether that is all of it."""
    from services import contract
    from trade_ops.nats_connect import connect_once

    nc = await connect_once(nats_url, name="trade-ops-doctor", timeout=2, login=login)
    try:
        found = await stream_fills(nc, contract.EXEC, contract.FILL_ALL, window)
        return found if found is not None else ([], True)  # no stream: no fill was ever published
    finally:
        await nc.close()


async def _orders(valkey_url: str, order_ids: list[str], login: dict[str, str] | None = None
                  ) -> tuple[dict[str, dict[str, Any] | None], bool]:
    """The orders of these ids, and (when there is none to look up) whether the OMS holds any."""
    import orjson
    import redis.asyncio as aioredis

    from services.contract import ORDER_KEY  # the OMS's own key layout

    client = aioredis.from_url(valkey_url, socket_timeout=2, **(login or {}))
    try:
        raws = await client.mget([ORDER_KEY.format(order_id=i) for i in order_ids]) if order_ids else []
        held = bool(raws) or bool((await client.scan(0, match=ORDER_KEY.format(order_id="*"), count=1000))[1])
    finally:
        await client.aclose()
    return {i: orjson.loads(r) if r else None for i, r in zip(order_ids, raws, strict=True)}, held


def _lake_fill_ids(lake_uri: str) -> list[str] | None:
    from deltalake import DeltaTable

    from services import contract

    uri = f"{lake_uri.rstrip('/')}/{contract.FILLS_TABLE}"
    if not DeltaTable.is_deltatable(uri):
        return None
    column = DeltaTable(uri).to_pyarrow_table(columns=["fill_id"]).column("fill_id")
    return [str(x) for x in column.to_pylist()]


async def _positions(ptrc_url: str, accounts: list[str]) -> dict[str, dict[str, float]]:
    import httpx

    async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
        answers = await asyncio.gather(*(http.get(f"{ptrc_url}/positions", params={"account": a})
                                         for a in accounts))
    out: dict[str, dict[str, float]] = {}
    for account, resp in zip(accounts, answers, strict=True):
        rows = resp.json().get("positions", []) if resp.status_code == 200 else []
        out[account] = {row["symbol"]: float(row.get("quantity", 0.0)) for row in rows}
    return out


async def gather(where: dict[str, Any]) -> dict[str, Any]:
    """Everything judge() needs, read at once (the child process's whole job)."""
    started = time.perf_counter()
    nats_login, valkey_login = _logins(where)
    parts: dict[str, float] = {}

    async def timed(name: str, coro: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await coro
        finally:
            parts[name] = round((time.perf_counter() - t0) * 1000, 1)

    lake_task = asyncio.create_task(timed("lake_ms", asyncio.to_thread(_lake_fill_ids, where["lake"])))
    window = int(where.get("window", DEFAULT_WINDOW))
    fills, whole = await timed("stream_ms", _stream_fills(where["nats"], window, nats_login))
    order_ids = sorted({str(f.get("order_id")) for f in fills})
    orders, held = await timed("orders_ms", _orders(where["valkey"], order_ids, valkey_login))
    lake = await lake_task
    # ptrc's positions are read by doctor itself once this is sent (positions_of): httpx is
    # loaded there already, and here it was 0.1 s of the child's start
    return {"fills": fills, "whole_history": whole, "orders": orders, "orders_held": held,
            "lake_fill_ids": lake, "positions": {},
            "gather_ms": round((time.perf_counter() - started) * 1000, 1), **parts}


async def positions_of(data: dict[str, Any], ptrc_url: str | None) -> None:
    """ptrc's positions of the accounts the fills name, into `data`, where they are compared
    (the window holds the stream's whole history)."""
    if data["whole_history"] and ptrc_url and data["fills"]:
        accounts = sorted({str(f.get("account") or "default") for f in data["fills"]})
        data["positions"] = await _positions(ptrc_url, accounts)


_FILL_KEYS = ("fill_id", "order_id", "account", "symbol", "side", "quantity", "_age_s")


def slim(data: dict[str, Any]) -> dict[str, Any]:
    """What judge() reads of gather()'s data, and no more: each fill's own fields, each order's
    status, and of the lake's fill ids (the whole table) the window's and the repeated ones,
    as often as written. The child sends this; it sent every order and all 50,000 ids."""
    fills = [{k: f[k] for k in _FILL_KEYS if k in f} for f in data["fills"]]
    orders = {i: ({"status": o.get("status")} if isinstance(o, dict) else None)
              for i, o in data["orders"].items()}
    lake = data.get("lake_fill_ids")
    if lake is not None:
        counts = Counter(lake)
        window = {str(f.get("fill_id")) for f in fills}
        lake = [i for i in lake if i in window or counts[i] > 1]
    return {**data, "fills": fills, "orders": orders, "lake_fill_ids": lake}


def _examples(items: list[str]) -> str:
    return ", ".join(items[:EXAMPLES]) + (" ..." if len(items) > EXAMPLES else "")


def judge(data: dict[str, Any], r: CheckResult, fixes: dict[str, str] | None = None) -> None:
    """Fold what gather() read into named failures, each with counts and examples."""
    fixes = fixes or {}
    fills: list[dict[str, Any]] = data["fills"]
    orders: dict[str, Any] = data["orders"]
    r.data.update(fills=len(fills), orders=len(orders), whole_history=data["whole_history"],
                  **{k: data[k] for k in ("gather_ms", "stream_ms", "orders_ms", "lake_ms") if k in data})
    unknown = [f for f in fills if orders.get(str(f.get("order_id"))) is None]
    if unknown:
        ids = sorted({str(f["fill_id"]) for f in unknown})
        r.fail(f"{len(unknown)} fill(s) for orders the OMS does not know (e.g. {_examples(ids)})",
               fixes.get("live-gateway"))
    errored = sorted({str(f["order_id"]) for f in fills
                      if (orders.get(str(f.get("order_id"))) or {}).get("status") == "REJECTED"})
    if errored:
        r.fail(f"{len(errored)} order(s) answered with an error (REJECTED) have fills "
               f"(e.g. {_examples(errored)})", fixes.get("oms"))
    lake = data.get("lake_fill_ids")
    if lake is None:
        r.details.append("no fills table in the lake yet")
    else:
        dupes = sorted(k for k, n in Counter(lake).items() if n > 1)
        if dupes:
            r.fail(f"{len(dupes)} fill id(s) written more than once to the lake's fills table "
                   f"(e.g. {_examples(dupes)})", fixes.get("event-writer"))
        written = set(lake)
        missing = sorted(str(f["fill_id"]) for f in fills
                         if f.get("_age_s", 0) > LAKE_GRACE_S and str(f["fill_id"]) not in written)
        if missing:
            r.fail(f"{len(missing)} fill(s) in the stream are not in the lake after {LAKE_GRACE_S:.0f}s "
                   f"(e.g. {_examples(missing)})", fixes.get("event-writer"))
    if not data["whole_history"]:
        r.details.append(f"positions not compared: the window holds the last {len(fills)} fills, "
                         "not the whole history")
    elif data.get("positions_error"):
        r.details.append(f"positions not compared: {data['positions_error']}")
    else:
        _compare_positions(fills, data.get("positions") or {}, r, fixes.get("ptrc"))
    if not fills and data.get("orders_held"):  # nothing compared is no agreement
        r.warn("no fill found in the fills stream while the OMS holds orders: nothing could be compared "
               "(orders that never filled, or fills published where the stream does not capture them)",
               fixes.get("oms"))
    if r.status == "pass":
        r.summary = f"{len(fills)} fills, {len(orders)} orders agree"


def _compare_positions(fills: list[dict[str, Any]], positions: dict[str, dict[str, float]],
                       r: CheckResult, fix: str | None) -> None:
    expected: dict[tuple[str, str], float] = {}
    for f in fills:
        key = (str(f.get("account") or "default"), str(f["symbol"]))
        expected[key] = expected.get(key, 0.0) + _SIGN.get(str(f["side"]), 0.0) * float(f["quantity"])
    wrong = [f"{a}/{s}: ptrc {positions.get(a, {}).get(s, 0.0):g}, fills {q:g}"
             for (a, s), q in sorted(expected.items())
             if abs(positions.get(a, {}).get(s, 0.0) - q) > 1e-9 * max(1.0, abs(q))]
    if wrong:
        r.fail(f"{len(wrong)} position(s) disagree with the sum of their fills ({_examples(wrong)})", fix)


async def check_reconcile(target: Target, r: CheckResult, window: int, budget: float,
                          settled: asyncio.Event | None = None) -> None:
    """Start the child at once (its imports are the slow part), tell it to read once `settled`."""
    from trade_ops.doctor.evidence import address_of
    from trade_ops.doctor.lake_probe import endpoint

    ptrc = target.stack["ptrc"].base_url if target.has("ptrc") else None
    where = {"nats": target.stack.nats_url(), "valkey": target.stack.valkey_url(),
             "lake": target.lake_uri or target.stack.lake_uri(target.run_dir.path),
             "ptrc": ptrc, "window": window, "logins": str(target.logins)}
    # What the child reaches is reached by doctor: it is in the record too.
    reached = [str(where[k]) for k in ("nats", "valkey", "ptrc") if where[k]] + [endpoint(str(where["lake"]))]
    target.contacted.update(a for a in (address_of(u) for u in reached if u) if a)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "trade_ops.doctor.reconcile", json.dumps(where),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.PIPE)
    try:
        if settled is not None:
            await settled.wait()
        out, err = await asyncio.wait_for(proc.communicate(b"go\n"), budget)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        r.warn(f"not finished within its budget of {budget:.1f}s: lower the window (--reconcile-window)")
        return
    code = proc.returncode or 0
    if code != 0:  # a crash fails the check: a child that died compared nothing
        lines = err.decode(errors="replace").strip().splitlines()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        r.needs = ("nats", "valkey", "lake")  # one of them down is the cause, when one is
        r.fail(f"the reconciliation crashed ({how}): {lines[-1] if lines else 'it said nothing'}",
               "manual step: report it with the line above (a doctor check must not crash); "
               "--reconcile-window 0 skips the reconciliation meanwhile")
        return
    owners = ("oms", "live-gateway", "event-writer", "ptrc")
    import httpx
    import orjson

    data = orjson.loads(out)
    try:
        await positions_of(data, ptrc)
    except (httpx.HTTPError, ValueError) as exc:  # judged without them, and said: ptrc's check names it
        data["positions_error"] = f"ptrc's /positions: {type(exc).__name__}: {exc}"
    judge(data, r, {n: target.logs_remedy(n) for n in owners})


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m trade_ops.doctor.reconcile JSON", file=sys.stderr)
        return 2
    # Imported before the go: the wait hides the imports' cost. pyarrow's dataset and parquet
    # readers (and numpy) are what deltalake's to_pyarrow_table() imports on its first call:
    # 150-190 ms of the lake read after the go, 10 ms once imported.
    import deltalake  # noqa: F401
    import nats  # noqa: F401
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401
    import redis.asyncio  # noqa: F401

    import services.contract  # noqa: F401

    if not sys.stdin.readline():
        return 0  # doctor went away before saying go
    import orjson

    sys.stdout.buffer.write(orjson.dumps(slim(asyncio.run(gather(json.loads(argv[0])))), default=str))
    sys.stdout.flush()
    # Out without the interpreter's finalisation: the lake reader's native thread pool, torn
    # down there, aborted the child now and then ("terminate called without an active
    # exception", SIGABRT: 1 doctor run in 25) after its answer was complete.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
