"""sink-alt: alt-data events on `alt.>` -> Delta table `alt_events`, exactly once.

Partitioned by category and UTC date. The original sink-alt consumed a subject nobody
published; this one takes the whole ALT stream (`alt.news.{SYMBOL}` today, any future
category tomorrow) and names the category from the event, or from the subject.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pyarrow as pa

from services import contract
from services.kit.lake import schema_of
from services.kit.sink import SinkSpec, Table, date_of, sink_app

__all__ = ["ALT_EVENTS", "alt_row", "app"]

ALT_EVENTS = Table(contract.ALT_EVENTS, schema_of(
    contract.AltEvent, extra=[("subject", pa.string()), ("date", pa.string())]),
    partition_by=("category", "date"))


def alt_row(subject: str, event: msgspec.Struct) -> tuple[str, dict[str, Any]]:
    assert isinstance(event, contract.AltEvent)  # the ALT stream holds alt-data events only
    return ALT_EVENTS.name, {**msgspec.structs.asdict(event), "subject": subject, "date": date_of(event.ts)}


app = sink_app("sink-alt", [SinkSpec(
    durable=contract.TOPOLOGY["sink-alt"].durable("sink-alt"), tables=[ALT_EVENTS], route=alt_row)])
