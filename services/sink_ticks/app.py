"""sink-ticks: every tick on `market.tick.>` -> Delta table `market_ticks`, exactly once.

Partitioned by symbol and UTC date. Batching, ack-after-commit, dedup, /health and
/stats come from the shared sink (services/kit/sink.py).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from services import contract
from services.kit.sink import SinkSpec, Table, date_of, sink_app

__all__ = ["MARKET_TICKS", "app", "tick_row"]

MARKET_TICKS = Table(contract.MARKET_TICKS, pa.schema([
    ("id", pa.string()), ("symbol", pa.string()), ("seq", pa.int64()),
    ("bid", pa.float64()), ("ask", pa.float64()), ("last", pa.float64()),
    ("bid_size", pa.float64()), ("ask_size", pa.float64()), ("volume", pa.float64()),
    ("ts", pa.float64()), ("date", pa.string()),
]), partition_by=("symbol", "date"))
_COLUMNS = [f.name for f in MARKET_TICKS.schema]


def tick_row(subject: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    row = {name: event.get(name) for name in _COLUMNS}
    row["symbol"] = row["symbol"] or subject.rsplit(".", 1)[-1]
    row["date"] = date_of(float(event["ts"]))
    return MARKET_TICKS.name, row


app = sink_app("sink-ticks", [SinkSpec(
    durable=contract.TOPOLOGY["sink-ticks"].durable("sink-ticks"), tables=[MARKET_TICKS],
    route=tick_row)])
