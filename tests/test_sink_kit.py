"""The shared sink against real NATS and a temporary lake, through sink-ticks.

Also the helpers the other sink tests use: building and publishing events, reading a
table, starting a sink process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from services import provision as topology
from services.kit import bus, lake
from tests.bus_helpers import send
from tests.helpers import Proc, json_object, remake_durables, start_service, wait_until

pytestmark = pytest.mark.process

T0 = 1_767_225_600_000.0  # 2026-01-01T00:00:00Z in epoch ms


def tick(symbol: str, seq: int, last: float = 100.0, volume: float = 1.0,
         ts: float | None = None) -> dict[str, Any]:
    return {"id": f"{symbol}-{seq}", "symbol": symbol, "seq": seq, "bid": last - 0.01, "ask": last + 0.01,
            "last": last, "bid_size": 100, "ask_size": 100, "volume": volume,
            "ts": T0 + seq if ts is None else ts}


def publish(nats_url: str, events: list[tuple[str, dict[str, Any]]], pause_every: int = 0) -> None:
    """Publish on JetStream and wait for every ack; a short pause every `pause_every` events."""

    async def _run() -> None:
        nc = await bus.connect(nats_url, "test-publisher")
        js = nc.jetstream()
        await topology.ensure_streams(js, sorted({bus.stream_for(s) for s, _ in events}))
        for i, (subject, event) in enumerate(events, 1):
            await send(js, subject, event)
            if pause_every and i % pause_every == 0:
                await asyncio.sleep(0.02)
        await nc.close()

    asyncio.run(_run())


def read_table(lake_uri: str, table: str) -> pa.Table | None:
    if not lake.table_exists(lake_uri, table):
        return None
    return DeltaTable(lake.table_uri(lake_uri, table)).to_pyarrow_table()


def count(lake_uri: str, table: str) -> int:
    rows = read_table(lake_uri, table)
    return 0 if rows is None else rows.num_rows


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=5)


def start_sink(name: str, tmp_path: Path, nats_url: str, lake_uri: str, **env: str) -> Proc:
    base = {"TRADE_OPS_NATS_URL": nats_url, "TRADE_OPS_LAKE_URI": lake_uri,
            "TRADE_OPS_SINK_BATCH_SIZE": "100", "TRADE_OPS_SINK_MAX_WAIT_S": "0.2",
            "TRADE_OPS_LOG_LEVEL": "warning"}
    remake_durables(nats_url, name, ack_wait_s=1.0)  # a crashed sink's batch comes again in 1 s
    return start_service(name, tmp_path, {**base, **env})


def drained(proc: Proc, rows: int) -> bool:
    """The sink committed `rows` rows (this process) and the server holds nothing unacked."""
    stats = json_object(get(proc.url + "/stats").content)
    return bool(stats["rows_written"] >= rows and stats["pending"] == 0)


def test_ticks_land_once_with_the_right_schema(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_uri = str(tmp_path / "lake")
    sink = start_sink("sink-ticks", tmp_path, fresh_nats.url, lake_uri)
    try:
        events = [(f"market.tick.{s}", tick(s, i, 100 + i)) for i in range(1, 26) for s in ("AAPL", "MSFT")]
        publish(fresh_nats.url, events)
        assert wait_until(lambda: drained(sink, 50), 15), get(sink.url + "/stats").text
        rows = read_table(lake_uri, "market_ticks")
        assert rows is not None and rows.num_rows == 50
        schema = dict(zip(rows.schema.names, rows.schema.types, strict=True))
        assert schema["symbol"] == pa.string() and schema["seq"] == pa.int64()
        assert schema["last"] == pa.float64() and schema["ts"] == pa.float64()
        assert schema["_seq"] == pa.int64() and schema["date"] == pa.string()
        assert DeltaTable(lake.table_uri(lake_uri, "market_ticks")).metadata().partition_columns == [
            "symbol", "date"]
        first = rows.filter(pc.equal(rows["id"], "MSFT-3")).to_pylist()[0]
        assert first["last"] == 103 and first["date"] == "2026-01-01" and first["volume"] == 1.0
        stats = get(sink.url + "/stats").json()
        assert stats["batches"] >= 1 and stats["last_write"] and stats["rejected"] == 0
        health = get(sink.url + "/health")
        assert health.status_code == 200 and health.json()["status"] == "pass", health.text
        assert "consumer:pending" in health.json()["checks"]
        assert "lake:lastWriteAge" in health.json()["checks"]
    finally:
        sink.stop()


def test_sigkill_mid_flow_loses_and_doubles_nothing(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_uri, total = str(tmp_path / "lake"), 3000
    sink = start_sink("sink-ticks", tmp_path, fresh_nats.url, lake_uri)
    events = [(f"market.tick.S{i % 7}", tick(f"S{i % 7}", i)) for i in range(total)]
    publisher = threading.Thread(target=publish, args=(fresh_nats.url, events, 50))
    publisher.start()
    try:
        assert wait_until(lambda: count(lake_uri, "market_ticks") > 0, 15)
        os.kill(sink.popen.pid, signal.SIGKILL)  # in the middle of the flow
        sink.popen.wait(5)
        sink = start_sink("sink-ticks", tmp_path, fresh_nats.url, lake_uri)
        publisher.join(30)
        assert wait_until(lambda: count(lake_uri, "market_ticks") >= total
                          and get(sink.url + "/stats").json()["pending"] == 0, 30)
        rows = read_table(lake_uri, "market_ticks")
        assert rows is not None
        assert rows.num_rows == total
        assert len(set(rows["id"].to_pylist())) == total
    finally:
        publisher.join(30)
        sink.stop()


def test_crash_between_commit_and_ack_is_not_doubled(tmp_path: Path, fresh_nats: Proc) -> None:
    lake_uri = str(tmp_path / "lake")
    # The sink exits right after its first commit, before acking it: the worst moment.
    sink = start_sink("sink-ticks", tmp_path, fresh_nats.url, lake_uri,
                      TRADE_OPS_SINK_CRASH_AFTER_COMMITS="1")
    publish(fresh_nats.url, [("market.tick.AAPL", tick("AAPL", i)) for i in range(300)])
    sink.popen.wait(15)
    committed = count(lake_uri, "market_ticks")
    assert committed > 0
    sink = start_sink("sink-ticks", tmp_path, fresh_nats.url, lake_uri)
    try:
        assert wait_until(lambda: drained(sink, 300 - committed), 20), get(sink.url + "/stats").text
        rows = read_table(lake_uri, "market_ticks")
        assert rows is not None and rows.num_rows == 300
        assert get(sink.url + "/stats").json()["duplicates_skipped"] >= committed
    finally:
        sink.stop()
