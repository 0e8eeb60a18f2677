"""Reconciliation on a deployment trade-ops did not build: the OMS's own order listing against
the fills that deployment keeps, where they are declared or discovered (never trade-ops' EXEC
stream and order keys, unless the OMS is trade-ops' own).

    orders   the OMS's GET /orders (the path its OpenAPI lists, else /orders), each order read
             through its order contract: FILLED, open, rejected, ended
    fills    JetStream streams and lake (Delta) tables: what the stack file declares,

                 [contracts.fills]
                 stream = "TRADES"            # the stream that keeps the fills
                 subject = "trade.fill.>"     # their subjects (default: all of the stream)
                 table = "fills"              # and/or a table of the lake (--lake)
                 order_id = "order_id"        # the field naming the order (default: order_id, orderId)

             else trade-ops' EXEC stream when the OMS is trade-ops' own, else every stream on
             the server and every table of a local lake whose name (or subjects) say "fill"

What is judged, over the last N messages of each fills stream (--reconcile-window) and the
whole of each table:

    orders the OMS lists as FILLED with no fill        fail (when the window holds the whole
                                                       stream); a warning when only tables keep
                                                       fills (their writers batch)
    orders listed and no fills source to compare with  warn, counts quoted: nothing compared is no
                                                       agreement
    orders listed, none filled, and no fill kept for    warn, counts quoted
    any of them
    no listing (no GET /orders, or no JSON list)        skipped: why
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from trade_ops.doctor.http import call, json_of
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.order_contract import Verdict

__all__ = ["FillSource", "Listing", "check_foreign_reconcile", "judge_foreign", "list_orders"]

EXAMPLES = 3
_ORDER_KEYS = ("order_id", "orderId", "order")


@dataclass
class FillSource:
    name: str  # the stream, or the lake table
    subject: str  # a stream's filter: ">" for all of it
    order_key: str | None  # the fill's field naming its order (None: order_id or orderId)
    rests_on: str  # "stack file" | "trade-ops' model" | "nats monitoring" | "lake"
    table: bool = False  # a Delta table of the lake (written in batches), not a stream

    @property
    def shown(self) -> str:
        if self.table:
            return f"table {self.name}"
        return f"stream {self.name}" + (f" ({self.subject})" if self.subject != ">" else "")


@dataclass
class Listing:
    """What the OMS's own listing says: each order's id and verdict."""

    path: str
    orders: dict[str, Verdict] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)

    def by(self, verdict: Verdict) -> list[str]:
        return sorted(i for i, v in self.orders.items() if v == verdict)

    def counts(self) -> str:
        words = ", ".join(f"{n} {s}" for s, n in self.statuses.most_common())
        return f"its {self.path} lists {len(self.orders)} order(s)" + (f" ({words})" if words else "")


def _examples(items: list[str]) -> str:
    return ", ".join(items[:EXAMPLES]) + (" ..." if len(items) > EXAMPLES else "")


def _listing_path(openapi: Any) -> str | None:
    """The GET of the orders collection its OpenAPI lists; None: the OpenAPI says there is none."""
    paths = openapi.get("paths") if isinstance(openapi, dict) else None
    if not isinstance(paths, dict):
        return "/orders"  # no OpenAPI to read: ask where OMSes list orders
    found = [p for p, ops in paths.items() if isinstance(ops, dict) and "get" in ops
             and p.rstrip("/").rsplit("/", 1)[-1] == "orders"]
    return min(found, key=len) if found else None


async def list_orders(target: Target, http: httpx.AsyncClient) -> tuple[Listing | None, str]:
    """(the OMS's listing, "") or (None, why there is none)."""
    from trade_ops.doctor.round_trip import contract_for, listed

    oms = target.component("oms")
    if oms is None:
        return None, "no OMS is examined here"
    openapi = json_of((await call(http, "GET", f"{oms.base_url}/openapi.json", target.timeout)).response)
    path = _listing_path(openapi)
    if path is None:
        return None, "the OMS's OpenAPI lists no GET of its orders"
    answer = await call(http, "GET", oms.base_url + path, target.timeout)
    if answer.response is None or answer.response.status_code != 200:
        said = answer.error if answer.response is None else f"HTTP {answer.response.status_code}"
        return None, f"the OMS's GET {path} answered {said}"
    doc = json_of(answer.response)
    orders = listed(doc)
    if not orders and not isinstance(doc, list) and not (isinstance(doc, dict) and any(
            isinstance(doc.get(k), list) for k in ("orders", "items", "data", "results"))):
        return None, f"the OMS's GET {path} answered no list of orders"
    contract = await contract_for(target, http, "oms", "/orders")
    out = Listing(f"GET {path}")
    for order in orders:
        reading = contract.read(200, order)
        if reading.order_id is not None:
            out.orders[str(reading.order_id)] = reading.verdict
            out.statuses[reading.status or reading.verdict.value] += 1
    return out, ""


def _declared(target: Target) -> list[FillSource] | None:
    table = target.stack.contracts.get("fills")
    if not table or not (table.get("stream") or table.get("table")):
        return None
    key = str(table["order_id"]) if table.get("order_id") else None
    out = [FillSource(str(table["stream"]), str(table.get("subject") or ">"), key, "stack file")] \
        if table.get("stream") else []
    if table.get("table"):
        out.append(FillSource(str(table["table"]), ">", key, "stack file", table=True))
    return out


async def _streams(target: Target, js: Any) -> list[FillSource]:
    if await target.is_own("oms"):
        from services import contract

        return [FillSource(contract.EXEC, contract.FILL_ALL, None, "trade-ops' model")]
    found: list[FillSource] = []
    with contextlib.suppress(Exception):  # no JetStream there: no stream to find
        for info in await js.streams_info():
            subjects = list(info.config.subjects or [])
            fills = [s for s in subjects if "fill" in s.lower()]
            if fills or "fill" in (info.config.name or "").lower():
                subject = fills[0] if len(fills) == 1 else ">"
                found.append(FillSource(str(info.config.name), subject, None, "nats monitoring"))
    return found


def _local(lake: str) -> Path | None:
    """The lake's folder, when it is one (an s3:// lake's tables are not listed: declare them)."""
    parts = urlsplit(lake)
    if parts.scheme not in ("", "file"):
        return None
    folder = Path(parts.path if parts.scheme else lake)
    return folder if folder.is_dir() else None


def _tables(lake: str) -> list[FillSource]:
    """The lake's Delta tables whose name says "fill"."""
    folder = _local(lake)
    if folder is None:
        return []
    return [FillSource(t.name, ">", None, "lake", table=True) for t in sorted(folder.iterdir())
            if "fill" in t.name.lower() and (t / "_delta_log").is_dir()]


def _table_orders(lake: str, source: FillSource) -> list[str] | None:
    """The order each row of a lake table names (None: no such table)."""
    from deltalake import DeltaTable

    uri = f"{lake.rstrip('/')}/{source.name}"
    if not DeltaTable.is_deltatable(uri):
        return None
    table = DeltaTable(uri)
    names = [f.name for f in table.schema().fields]
    key = source.order_key or next((k for k in _ORDER_KEYS if k in names), None)
    if key not in names:
        return []
    column = table.to_pyarrow_table(columns=[key]).column(key)
    return [str(x) for x in column.to_pylist() if x is not None]


def _order_of(fill: dict[str, Any], key: str | None) -> str | None:
    value = fill.get(key) if key else next((fill[k] for k in _ORDER_KEYS if fill.get(k) not in (None, "")),
                                           None)
    return str(value) if isinstance(value, str | int) else None


@dataclass
class Fills:
    """The fills read from the sources: the order each names, and whether each window was whole."""

    sources: list[FillSource] = field(default_factory=list)
    orders: Counter[str] = field(default_factory=Counter)
    count: int = 0
    whole: bool = True
    missing: list[str] = field(default_factory=list)  # declared sources that do not exist

    @property
    def where(self) -> str:
        return ", ".join(s.shown for s in self.sources)

    @property
    def batched(self) -> bool:
        """Only lake tables: their writers batch, the newest fills may not be there yet."""
        return all(s.table for s in self.sources)

    def add(self, source: FillSource, orders: Sequence[str | None] | None, whole: bool = True) -> None:
        if orders is None:
            self.missing.append(source.shown)
            return
        self.whole = self.whole and whole
        self.count += len(orders)
        self.orders.update(o for o in orders if o)


async def _read_streams(target: Target, window: int, declared: list[FillSource] | None,
                        fills: Fills) -> str:
    """Add the fills streams' to `fills`: "" or why there are none to read."""
    from nats.errors import Error as NatsError

    from trade_ops.credentials import nats_login
    from trade_ops.doctor.reconcile import stream_fills
    from trade_ops.nats_connect import connect_once

    wanted = [s for s in declared or [] if not s.table]
    if declared is not None and not wanted:
        return ""
    nats_c = next((c for c in target.infra if c.kind == "nats"), None)
    if nats_c is None or nats_c.port is None:
        return "no NATS is examined here, where fills would be kept (give --nats nats://HOST:PORT)"
    where = f"{nats_c.host}:{nats_c.port}"
    target.contacted.add(where)
    try:
        nc = await connect_once(f"nats://{where}", name="trade-ops-doctor", timeout=2 * target.timeout,
                                login=nats_login(target.logins))
    except (NatsError, OSError, TimeoutError) as exc:
        return f"doctor cannot connect to NATS at {where} ({exc or 'timed out'})"
    try:
        sources = wanted or await _streams(target, nc.jetstream())
        for source in sources:
            read = await stream_fills(nc, source.name, source.subject, window)
            fills.sources.append(source)
            fills.add(source, None if read is None else [_order_of(f, source.order_key) for f in read[0]],
                      read is None or read[1])
        return "" if sources else "no stream on the server says 'fill'"
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def _read_tables(target: Target, declared: list[FillSource] | None, fills: Fills) -> str:
    """Add the lake's fills tables' to `fills`: "" or why there are none to read."""
    from trade_ops.doctor.lake_probe import endpoint

    wanted = [s for s in declared or [] if s.table]
    if declared is not None and not wanted:
        return ""
    lake = target.lake_uri
    if not lake:
        return "no lake is examined here (give --lake URI)"
    reached = endpoint(lake)
    if reached:
        target.contacted.add(reached.split("://", 1)[-1])
    sources = wanted or await asyncio.to_thread(_tables, lake)
    for source in sources:
        fills.sources.append(source)
        try:
            fills.add(source, await asyncio.to_thread(_table_orders, lake, source))
        except Exception as exc:  # an unreadable table is said, not a crash of the check
            fills.missing.append(f"{source.shown} ({type(exc).__name__}: {str(exc)[:120]})")
    return "" if sources else "no table of the lake says 'fill'"


async def read_fills(target: Target, window: int) -> tuple[Fills | None, str]:
    """(the fills, "") or (None, why doctor found none to read): the sources the stack file's
    [contracts.fills] names, else trade-ops' EXEC for its own OMS, else the streams and lake
    tables whose names say "fill"."""
    declared = _declared(target)
    fills = Fills()
    whys = await asyncio.gather(_read_streams(target, window, declared, fills),
                                _read_tables(target, declared, fills))
    if not fills.sources:
        return None, "; ".join(w for w in whys if w) or "no fills stream or table is declared"
    return fills, ""


def judge_foreign(listing: Listing, fills: Fills | None, why_no_fills: str, r: CheckResult) -> None:
    """Fold the OMS's listing and the fills kept into findings, each with its counts."""
    filled, open_ = listing.by(Verdict.FILLED), listing.by(Verdict.ACCEPTED)
    r.data.update(orders=len(listing.orders), orders_filled=len(filled), orders_open=len(open_),
                  statuses=dict(listing.statuses))
    r.rest_on("its own answer")
    if fills is None or not fills.sources:
        why = why_no_fills or ("no fills stream is declared ([contracts.fills] stream = NAME in the stack "
                               "file) and none on the server says 'fill'")
        if listing.orders:
            r.warn(f"{listing.counts()}, and doctor found no fills to reconcile them against ({why}): "
                   "nothing could be compared",
                   "manual step: declare where the fills are kept, under [contracts.fills] in the stack "
                   "file (--stack FILE): stream = NAME, order_id = FIELD")
        else:
            r.summary = f"nothing to reconcile: {listing.counts()}"
        return
    r.rest_on(*(s.rests_on for s in fills.sources))
    r.data.update(fills=fills.count, fill_sources=[s.name for s in fills.sources],
                  whole_history=fills.whole)
    if fills.missing:
        r.fail(f"{', '.join(fills.missing)}, declared to keep the fills, cannot be read",
               "manual step: fix [contracts.fills] in the stack file (--stack FILE), or create it")
    no_fill = [i for i in filled if i not in fills.orders]
    if no_fill and fills.whole:
        found = (f"{len(no_fill)} of {len(filled)} order(s) the OMS lists as FILLED have no fill in "
                 f"{fills.where} (e.g. {_examples(no_fill)}); {listing.counts()}, {fills.count} fill(s) kept")
        fix = ("manual step: see where the OMS takes these fills from: a fill that is not kept is not in "
               "the audit trail")
        if fills.batched:  # a table's writer batches: the newest fills may not be there yet
            r.warn(found + " (a table is written in batches: the newest fills may not be in it yet)", fix)
        else:
            r.fail(found, fix)
    elif no_fill:
        r.details.append(f"{len(no_fill)} FILLED order(s) with no fill in the window (older fills are "
                         "outside --reconcile-window): not judged")
    unknown = sorted(set(fills.orders) - set(listing.orders))
    if unknown:  # a listing may be paged: said, not judged
        r.details.append(f"{len(unknown)} order(s) with fills are not in the listing "
                         f"(e.g. {_examples(unknown)}; a listing may be paged)")
    if listing.orders and not filled and not any(o in listing.orders for o in fills.orders):
        kept = f"holds {fills.count} fill(s), none for a listed order" if fills.count else "holds no fill"
        r.warn(f"{listing.counts()}, none FILLED, and {fills.where} {kept}: nothing could be compared",
               "manual step: see why no order fills (doctor --trade follows one order through the stack)")
    if r.status == "pass":
        r.summary = (f"{len(filled)} FILLED order(s) of {len(listing.orders)} listed agree with "
                     f"{fills.count} fill(s) in {fills.where}")


async def check_foreign_reconcile(target: Target, http: httpx.AsyncClient, r: CheckResult, window: int,
                                  settled: asyncio.Event | None = None) -> None:
    """The OMS's listing against the fills kept; a skip with why when there is no listing."""
    r.component = "oms"
    if settled is not None:
        await settled.wait()  # doctor's own orders are placed and cancelled before the listing
    (listing, why), (fills, why_no_fills) = await asyncio.gather(list_orders(target, http),
                                                                 read_fills(target, window))
    if listing is None:
        r.skip(f"{why}: there is nothing of the OMS's to reconcile fills against")
        return
    judge_foreign(listing, fills, why_no_fills, r)
