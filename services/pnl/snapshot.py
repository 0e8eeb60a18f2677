"""P&L per account and symbol (positions from ptrc's snapshots, marks from live quotes), and
its snapshots to the lake table `pnl_snapshots`.

Unrealized P&L marks to the mid; a symbol without a quote yet has no mark and no
unrealized figure (null, never a made-up zero).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from services import contract
from services.kit.ledger import tidy
from services.kit.position_book import PositionBook
from services.kit.positions import Position
from services.kit.quotes import QuoteBook

__all__ = ["TABLE", "SnapshotOutcome", "account_pnl", "pnl_schema", "snapshot_forever", "write_snapshot"]

log = logging.getLogger(__name__)
TABLE = contract.PNL_SNAPSHOTS


@dataclass(slots=True)
class SnapshotOutcome:
    """The last snapshot's outcome, for /health."""

    rows: int | None = None
    at: str | None = None  # ISO-8601 UTC of the last success
    error: str | None = None  # why the last one failed; None once one succeeds


def _row(symbol: str, p: Position, quotes: QuoteBook) -> dict[str, Any]:
    quote = quotes.get(symbol)
    mark = quote.mid if quote is not None else None
    unrealized = p.unrealized(mark) if mark is not None else None
    total = p.realized + (unrealized or 0.0)
    return {"symbol": symbol, "quantity": tidy(p.quantity), "avg_price": tidy(p.avg_price),
            "mark": mark, "realized": tidy(p.realized), "unrealized": tidy(unrealized),
            "total": tidy(total)}


def account_pnl(book: PositionBook, quotes: QuoteBook, account: str) -> dict[str, Any]:
    rows = [_row(s, p, quotes) for s, p in book.of(account).items()]
    return {"account": account, "symbols": rows,
            "realized": tidy(sum(r["realized"] for r in rows)),
            "unrealized": tidy(sum(r["unrealized"] or 0.0 for r in rows)),
            "total": tidy(sum(r["total"] for r in rows)),
            "unmarked": [r["symbol"] for r in rows if r["mark"] is None]}


def pnl_schema() -> Any:
    """The table's schema: a PnlRow, and when (ts) and its date."""
    import pyarrow as pa  # heavy: only the snapshot task needs it

    from services.kit import lake

    return lake.schema_of(contract.PnlRow,
                          extra=[("ts", pa.timestamp("ms", tz="UTC")), ("date", pa.string())])


def _append(lake_uri: str, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa

    from services.kit import lake

    lake.append(lake_uri, TABLE, pa.Table.from_pylist(rows, schema=pnl_schema()), partition_by=["date"])


async def write_snapshot(book: PositionBook, quotes: QuoteBook, lake_uri: str) -> int:
    """One snapshot of every account's P&L; returns the number of rows written."""
    now = datetime.now(UTC)
    rows = []
    for account in sorted(book.accounts):
        for row in account_pnl(book, quotes, account)["symbols"]:
            pnl = msgspec.structs.asdict(contract.PnlRow(account=account, **row))  # the table's row type
            rows.append({**pnl, "ts": now, "date": now.date().isoformat()})
    if rows:
        await asyncio.to_thread(_append, lake_uri, rows)
    return len(rows)


async def snapshot_forever(book: PositionBook, quotes: QuoteBook, lake_uri: str, every_s: float,
                           outcome: SnapshotOutcome) -> None:
    """Snapshot every `every_s`; the last outcome goes in `outcome` for /health."""
    while True:
        await asyncio.sleep(every_s)
        try:
            outcome.rows = await write_snapshot(book, quotes, lake_uri)
            outcome.error = None
            outcome.at = datetime.now(UTC).isoformat()
        except Exception as exc:  # the lake being down must not stop the service
            log.warning("pnl: snapshot failed: %s", exc)
            outcome.error = f"{type(exc).__name__}: {exc}"
