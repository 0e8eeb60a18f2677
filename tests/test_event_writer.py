"""event-writer: orders and fills land in `orders` and `fills` with the right schema, once."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from tests.helpers import Proc, wait_until
from tests.test_sink_kit import T0, count, get, publish, read_table, start_sink

pytestmark = pytest.mark.process

ORDER = {"order_id": "o-1", "client_order_id": "c-1", "account": "acct", "symbol": "AAPL", "side": "buy",
         "quantity": 10, "order_type": "LIMIT", "price": 100.5, "time_in_force": "GTC",
         "status": "ACCEPTED", "filled_quantity": 0, "avg_fill_price": None, "risk_level": "LOW",
         "warnings": ["near limit"], "reason": None, "created_ts": T0, "updated_ts": T0}
FILL = {"id": "f-1", "fill_id": "f-1", "order_id": "o-1", "client_order_id": "c-1", "account": "acct",
        "symbol": "AAPL", "side": "buy", "quantity": 4, "price": 100.5, "cumulative_quantity": 4,
        "leaves_quantity": 6, "final": False, "order_ts": T0, "arrival_mid": 100.25, "ts": T0 + 5}
EVENTS = [
    ("orders.new", {"id": "o-1", "ts": T0, "order": ORDER}),
    ("exec.fill.AAPL", FILL),
    ("orders.cancel", {"id": "cancel-o-1", "ts": T0 + 7, "order_id": "o-1", "account": "acct",
                       "symbol": "AAPL"}),
    ("exec.cancelled", {"id": "cancelled-o-1", "ts": T0 + 9, "order_id": "o-1", "account": "acct",
                        "symbol": "AAPL", "cancelled_quantity": 6, "reason": "user"}),
]


def test_orders_and_fills_land_in_the_audit_tables(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_uri = str(tmp_path / "lake")
    writer = start_sink("event-writer", tmp_path, fresh_nats.url, lake_uri)
    try:
        publish(fresh_nats.url, EVENTS)
        publish(fresh_nats.url, EVENTS)  # republished: JetStream drops them by Nats-Msg-Id
        assert wait_until(lambda: count(lake_uri, "orders") == 3 and count(lake_uri, "fills") == 1
                          and get(writer.url + "/stats").json()["pending"] == 0, 15)
        orders = read_table(lake_uri, "orders")
        assert orders is not None
        by_type = {r["event_type"]: r for r in orders.to_pylist()}
        assert set(by_type) == {"new", "cancel_request", "cancelled"}
        assert by_type["new"]["price"] == 100.5 and by_type["new"]["warnings"] == ["near limit"]
        assert by_type["cancelled"]["status"] == "CANCELLED"
        assert by_type["cancelled"]["cancelled_quantity"] == 6.0
        assert orders.schema.field("quantity").type == pa.float64()
        fills = read_table(lake_uri, "fills")
        assert fills is not None
        [fill] = fills.to_pylist()
        assert (fill["fill_id"], fill["quantity"], fill["final"], fill["date"]) == ("f-1", 4.0, False,
                                                                                     "2026-01-01")
        assert fills.schema.field("final").type == pa.bool_()
        assert fill["arrival_mid"] == 100.25  # TCA's arrival price, on every fill since issue 26
        health = get(writer.url + "/health").json()
        assert health["status"] == "pass", health
        assert {"consumer/event-writer-orders:pending", "lake/event-writer-exec:lastWriteAge"} <= set(
            health["checks"])
        stats = get(writer.url + "/stats").json()
        assert stats["rows_written"] == 4 and set(stats["sinks"]) == {"event-writer-orders",
                                                                       "event-writer-exec"}
    finally:
        writer.stop()


def test_a_malformed_event_is_rejected_not_blocking(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_uri = str(tmp_path / "lake")
    writer = start_sink("event-writer", tmp_path, fresh_nats.url, lake_uri)
    try:
        bad = {**FILL, "id": "f-bad", "fill_id": "f-bad", "quantity": "lots"}
        good = {**FILL, "id": "f-2", "fill_id": "f-2"}
        publish(fresh_nats.url, [("exec.fill.AAPL", bad), ("exec.fill.AAPL", good)])
        assert wait_until(lambda: get(writer.url + "/stats").json()["pending"] == 0
                          and count(lake_uri, "fills") == 1, 15)
        assert get(writer.url + "/stats").json()["rejected"] == 1
        # counted by the kit's one decode, by family
        assert 'bus_malformed_messages_total{family="fill"} 1.0' in get(writer.url + "/metrics").text
    finally:
        writer.stop()


def test_a_fill_or_order_published_again_under_a_new_message_id_is_written_once(
        tmp_path: Path, fresh_nats: Proc) -> None:
    """A venue outbox flushed after JetStream's 2-minute duplicate window republishes its
    events with new stream sequences: the tables drop them by fill id / event id, also
    after a restart of the writer (issue 13: duplicate rows in `fills`)."""
    import time

    from services.contract import now_ms
    from tests.bus_helpers import publish as publish_with_ids

    lake_uri = str(tmp_path / "lake")
    now = now_ms()
    recent = [("orders.new", {"id": "o-9", "ts": now, "order": {**ORDER, "order_id": "o-9"}}),
              ("exec.fill.AAPL", {**FILL, "id": "f-9", "fill_id": "f-9", "order_id": "o-9", "ts": now})]
    writer = start_sink("event-writer", tmp_path, fresh_nats.url, lake_uri)
    try:
        publish(fresh_nats.url, recent)
        publish_with_ids(fresh_nats.url, [(*e, f"{e[1]['id']}-again") for e in recent])
        assert wait_until(lambda: get(writer.url + "/stats").json()["pending"] == 0
                          and count(lake_uri, "fills") == 1, 15)
        assert count(lake_uri, "orders") == 1
        assert get(writer.url + "/stats").json()["duplicates_skipped"] >= 2
    finally:
        writer.stop()
    writer = start_sink("event-writer", tmp_path, fresh_nats.url, lake_uri)
    try:
        publish_with_ids(fresh_nats.url, [(*e, f"{e[1]['id']}-third") for e in recent])
        assert wait_until(lambda: get(writer.url + "/stats").json()["pending"] == 0, 15)
        time.sleep(0.5)
        assert count(lake_uri, "fills") == 1 and count(lake_uri, "orders") == 1
    finally:
        writer.stop()
