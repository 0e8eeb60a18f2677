"""Sink health tells the truth: fail while writes fail, warn when data waits unwritten,
fail while NATS is down, and back to pass each time (sink-alt, real NATS, temporary lake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from services.kit import lake
from tests.bus_helpers import restart_nats
from tests.helpers import Proc, json_object, wait_until
from tests.test_sink_kit import T0, count, get, publish, read_table, start_sink

pytestmark = pytest.mark.process


def news(i: int, symbol: str = "AAPL") -> tuple[str, dict[str, Any]]:
    return f"alt.news.{symbol}", {"id": f"news-{i}", "symbol": symbol, "category": "news",
                                  "headline": f"headline {i}", "sentiment": 0.5, "source": "test",
                                  "ts": T0 + i}


def status(proc: Proc) -> tuple[int, dict[str, Any]]:
    resp = get(proc.url + "/health")
    return resp.status_code, json_object(resp.content)


def is_status(proc: Proc, code: int, state: str) -> bool:
    got_code, doc = status(proc)
    return got_code == code and doc["status"] == state


def test_fails_while_writes_fail_then_passes_and_nothing_is_lost(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    blocker = lake_dir / "alt_events"
    sink = start_sink("sink-alt", tmp_path, fresh_nats.url, str(lake_dir))
    try:
        assert wait_until(lambda: is_status(sink, 200, "pass"), 10), status(sink)
        blocker.write_text("not a table")  # the table path is a file: every write fails
        publish(fresh_nats.url, [news(i) for i in range(20)])
        assert wait_until(lambda: is_status(sink, 503, "fail"), 15), status(sink)
        check = status(sink)[1]["checks"]["lake:lastWriteAge"][0]
        assert check["status"] == "fail" and "fail" in check["output"]
        blocker.unlink()
        assert wait_until(lambda: is_status(sink, 200, "pass") and count(str(lake_dir), "alt_events") == 20,
                          20), status(sink)
        rows = read_table(str(lake_dir), "alt_events")
        assert rows is not None and rows.schema.field("sentiment").type == pa.float64()
        assert set(rows["category"].to_pylist()) == {"news"}
        table = DeltaTable(lake.table_uri(str(lake_dir), "alt_events"))
        assert table.metadata().partition_columns == ["category", "date"]
        stats = get(sink.url + "/stats").json()
        assert stats["rows_written"] == 20 and stats["sinks"]["sink-alt"]["write_errors"] >= 1
    finally:
        sink.stop()


def test_warns_when_data_waits_fails_when_nats_is_down(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_uri = str(tmp_path / "lake")
    # A slow flush (3 s) and a short staleness limit: waiting data shows as a warning.
    sink = start_sink("sink-alt", tmp_path, fresh_nats.url, lake_uri, TRADE_OPS_SINK_BATCH_SIZE="1000",
                      TRADE_OPS_SINK_MAX_WAIT_S="3", TRADE_OPS_SINK_STALE_AFTER_S="0.3")
    again: Proc | None = None
    try:
        assert wait_until(lambda: is_status(sink, 200, "pass"), 10), status(sink)  # bound first
        publish(fresh_nats.url, [news(i) for i in range(5)])
        assert wait_until(lambda: is_status(sink, 200, "warn"), 10), status(sink)
        assert "waiting" in status(sink)[1]["checks"]["lake:lastWriteAge"][0]["output"]
        assert wait_until(lambda: is_status(sink, 200, "pass") and count(lake_uri, "alt_events") == 5, 15)

        fresh_nats.stop()
        assert wait_until(lambda: is_status(sink, 503, "fail"), 10), status(sink)
        assert status(sink)[1]["checks"]["nats:connection"][0]["status"] == "fail"
        again = restart_nats(fresh_nats, tmp_path)
        assert wait_until(lambda: is_status(sink, 200, "pass"), 20), status(sink)
        publish(fresh_nats.url, [news(i) for i in range(5, 10)])
        assert wait_until(lambda: count(lake_uri, "alt_events") == 10, 20)
    finally:
        sink.stop()
        if again is not None:
            again.stop()
