"""sink-alt: alt-data events on `alt.>` -> Delta table `alt_events`, exactly once.

Partitioned by category and UTC date. The original sink-alt consumed a subject nobody
published; this one takes the whole ALT stream (`alt.news.{SYMBOL}` today, any future
category tomorrow) and names the category from the event, or from the subject.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from services import contract
from services.kit.sink import SinkSpec, Table, date_of, sink_app

__all__ = ["ALT_EVENTS", "alt_row", "app"]

ALT_EVENTS = Table(contract.ALT_EVENTS, pa.schema([
    ("id", pa.string()), ("symbol", pa.string()), ("category", pa.string()),
    ("headline", pa.string()), ("sentiment", pa.float64()), ("source", pa.string()),
    ("subject", pa.string()), ("ts", pa.float64()), ("date", pa.string()),
]), partition_by=("category", "date"))
_COLUMNS = [f.name for f in ALT_EVENTS.schema]


def alt_row(subject: str, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    row = {name: event.get(name) for name in _COLUMNS}
    row["category"] = row["category"] or subject.split(".")[1]  # contract.alt_subject
    row["subject"] = subject
    row["date"] = date_of(float(event["ts"]))
    return ALT_EVENTS.name, row


app = sink_app("sink-alt", [SinkSpec(
    durable=contract.TOPOLOGY["sink-alt"].durable("sink-alt"), tables=[ALT_EVENTS], route=alt_row)])
