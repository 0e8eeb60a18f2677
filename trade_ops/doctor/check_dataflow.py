"""Data flow: ticks flowing, sinks writing, consumers keeping up.

Rates come from two samples a short interval apart (the stream's last sequence, a
sink's row count); lags from NATS monitoring's jsz with consumers (monitoring.py). The
TICKS stream and the consumers' lag are trade-ops' own: on a foreign deployment the
messaging topology (check_topology.py) says what flows. A foreign sink is judged by its
own `/stats` read whole (a count nested under `stats.ticks.rows_written` counts), or
skipped when it serves none.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from services import contract
from trade_ops.doctor import monitoring
from trade_ops.doctor.check_infra import SPARSE_WRITERS
from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target

__all__ = ["LAG_FAIL", "LAG_WARN", "SINKS", "check_consumer_lag", "check_sink", "check_ticks",
           "sink_progress"]

SINKS = ("sink-ticks", "sink-alt", "event-writer")
LAG_WARN, LAG_FAIL = 1_000, 100_000
FRESH_S = 30.0


async def _jsz(target: Target, http: httpx.AsyncClient, **options: bool) -> tuple[dict[str, Any] | None, str]:
    reading = await monitoring.read(target, http, "jsz", **options)
    return reading.doc, reading.error


def _stream(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    for account in doc.get("account_details", []):
        for stream in account.get("stream_detail", []):
            if stream.get("name") == name:
                state: dict[str, Any] = stream.get("state", {})
                return state
    return None


async def check_ticks(target: Target, http: httpx.AsyncClient, r: CheckResult, window: float) -> None:
    first, err = await _jsz(target, http, streams=True)
    t0 = time.perf_counter()
    if first is None:
        r.fail(f"NATS monitoring unreachable: {err}", target.up_remedy("nats"))
        return
    if _stream(first, contract.TICKS) is None:
        r.fail("stream TICKS does not exist: the gateway never published", target.logs_remedy("gateway"))
        return
    await asyncio.sleep(window)
    second, err = await _jsz(target, http, streams=True)
    if second is None:
        r.fail(f"NATS monitoring stopped answering: {err}", target.up_remedy("nats"))
        return
    a, b = _stream(first, contract.TICKS) or {}, _stream(second, contract.TICKS) or {}
    rate = (b.get("last_seq", 0) - a.get("last_seq", 0)) / (time.perf_counter() - t0)
    r.data.update(ticks_per_s=round(rate, 1), messages=b.get("messages"))
    r.summary = f"{rate:.0f} ticks/s"
    if rate <= 0:
        r.fail(f"no ticks published in {window:.1f}s (last tick {b.get('last_ts')})",
               f"{target.logs_remedy('gateway')} (the market simulator publishes ticks)")


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value / 1000 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


_ROW_KEYS = ("rows_written", "rows", "records_written", "written", "messages_written", "events_written",
             "total_written", "inserted", "rows_total")


def _nested_rows(doc: dict[str, Any], depth: int = 0) -> float | None:
    """A row count wherever the body keeps it: the sum of the counts of its nested parts."""
    own = next((doc[k] for k in _ROW_KEYS if isinstance(doc.get(k), int | float)
                and not isinstance(doc.get(k), bool)), None)
    if own is not None or depth >= 3:
        return own
    counts = [_nested_rows(v, depth + 1) for v in doc.values() if isinstance(v, dict)]
    found = [c for c in counts if c is not None]
    return sum(found) if found else None


def sink_progress(doc: Any) -> tuple[float | None, float | None, int, str | None]:
    """(rows written, epoch seconds of the last write, write errors, last error) from /stats."""
    if not isinstance(doc, dict):
        return None, None, 0, None
    parts = [v for v in (doc.get("sinks") or {}).values() if isinstance(v, dict)] or [doc]
    rows = _nested_rows(doc)
    stamps = [t for t in (_epoch(p.get("last_write")) for p in [doc, *parts]) if t]
    errors = sum(int(p.get("write_errors") or 0) for p in parts)
    last_error = next((p["last_error"] for p in parts if p.get("last_error")), None)
    return rows, max(stamps) if stamps else None, errors, last_error


def wait_first_write(stack: Any, timeout: float = 5.0) -> bool:
    """After `up`: wait (bounded) for the tick sink's first commit, so a doctor run right
    after start measures the stack's health, not its first second."""
    if "sink-ticks" not in stack.components:
        return True
    url = f"{stack['sink-ticks'].base_url}/stats"
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            try:
                if sink_progress(client.get(url).json())[1] is not None:
                    return True
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
    return False


async def check_sink(target: Target, http: httpx.AsyncClient, r: CheckResult, name: str,
                     window: float) -> None:
    url = f"{target.stack[name].base_url}/stats"
    first, own = await asyncio.gather(call(http, "GET", url, target.timeout), target.is_own(name))
    t0 = time.perf_counter()
    r.rest_on("trade-ops' model" if own else "its own answer")
    if first.response is None or first.response.status_code != 200:
        what = first.error or f"HTTP {first.response.status_code}"  # type: ignore[union-attr]
        if not own:  # /stats is trade-ops' endpoint; another sink need not serve it
            r.skip(f"{name} is not a trade-ops service and GET /stats gave no row count ({what})")
            return
        r.fail(f"GET /stats: {what}", target.logs_remedy(name))
        return
    rows0 = sink_progress(json_of(first.response))[0]
    if rows0 is None and not own:
        r.skip(f"{name} is not a trade-ops service and its GET /stats shows no row count")
        return
    await asyncio.sleep(window)
    second = await call(http, "GET", url, target.timeout)
    rows1, last, errors, last_error = sink_progress(json_of(second.response))
    r.data.update(rows=rows1, last_write=last, write_errors=errors)
    if errors:
        r.warn(f"{errors} failed write(s); last: {last_error}", target.logs_remedy(name))
    age = time.time() - last if last else None
    if rows0 is not None and rows1 is not None and rows1 > rows0:
        rate = (rows1 - rows0) / (time.perf_counter() - t0)
        r.summary = f"{rows1:.0f} rows · +{rate:.0f}/s"
    elif age is not None and age < FRESH_S:
        r.summary = f"{rows1 or 0:.0f} rows · last write {age:.0f}s ago"
    elif name in SPARSE_WRITERS or not own:
        # Orders and alt-data events are sparse: idle is fine when nothing happened. A foreign
        # sink's batching is its own: a count that did not move in 0.3 s is no finding.
        r.summary = f"{rows1 or 0:.0f} rows · idle" + (f" (last write {age:.0f}s ago)" if age else "")
    elif rows1 is None and last is None:
        r.warn("GET /stats shows no row count or last-write time", target.logs_remedy(name))
    else:
        r.warn(f"no rows written in {window:.1f}s" + (f"; last write {age:.0f}s ago" if age else ""),
               target.logs_remedy(name))


async def check_consumer_lag(target: Target, http: httpx.AsyncClient, r: CheckResult) -> None:
    owns = await asyncio.gather(*(target.is_own(c.name) for c in target.services))
    if not any(owns):
        r.skip("no trade-ops service here: the messaging topology shows the consumers that lag")
        return
    r.rest_on("trade-ops' model", "nats monitoring")
    doc, err = await _jsz(target, http, streams=True, consumer=True)
    if doc is None:
        r.fail(f"NATS monitoring unreachable: {err}", target.up_remedy("nats"))
        return
    lags: dict[str, int] = {}
    for account in doc.get("account_details", []):
        for stream in account.get("stream_detail", []):
            for consumer in stream.get("consumer_detail") or []:
                key = f"{stream.get('name')}/{consumer.get('name')}"
                lags[key] = int(consumer.get("num_pending", 0)) + int(consumer.get("num_ack_pending", 0))
    r.data["lags"] = lags
    if not lags:
        r.summary = "no consumers"
        if target.services:
            r.warn("no JetStream consumers: nothing consumes the streams", target.up_remedy("nats")
                   if target.supervised else None)
        return
    worst_key = max(lags, key=lags.__getitem__)
    r.summary = f"{len(lags)} consumers · max lag {lags[worst_key]} ({worst_key})"
    for key, lag in sorted(lags.items(), key=lambda kv: -kv[1]):
        if lag > LAG_FAIL:
            r.fail(f"{key} is {lag} messages behind", "manual step: restart or scale the consumer's service")
        elif lag > LAG_WARN:
            r.warn(f"{key} is {lag} messages behind",
                   "manual step: watch whether it shrinks (trade-ops doctor --watch 5)")
