"""sink-ticks: every tick on `market.tick.>` -> Delta table `market_ticks`, exactly once.

Partitioned by symbol and UTC date. Batching, ack-after-commit, dedup, /health and
/stats come from the shared sink (services/kit/sink.py).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pyarrow as pa

from services import contract
from services.kit.lake import schema_of
from services.kit.sink import SinkSpec, Table, date_of, sink_app

__all__ = ["MARKET_TICKS", "app", "tick_row"]

MARKET_TICKS = Table(contract.MARKET_TICKS, schema_of(contract.Tick, extra=[("date", pa.string())]),
                     partition_by=("symbol", "date"))


def tick_row(subject: str, tick: msgspec.Struct) -> tuple[str, dict[str, Any]]:
    assert isinstance(tick, contract.Tick)  # the TICKS stream holds ticks only
    return MARKET_TICKS.name, {**msgspec.structs.asdict(tick), "date": date_of(tick.ts)}


app = sink_app("sink-ticks", [SinkSpec(
    durable=contract.TOPOLOGY["sink-ticks"].durable("sink-ticks"), tables=[MARKET_TICKS],
    route=tick_row)])
