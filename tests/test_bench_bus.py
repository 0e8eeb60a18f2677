"""`trade-ops bench fill` and `bench sink` on a real stack (started by the supervisor at a
free port offset): every order measured until its fill, every tick until the sink has
committed it; the same JSON document and exit codes as every target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.apps.stacks import free_offset
from tests.helpers import CLEAN_ENV, cli_json
from trade_ops.cli import app
from trade_ops.credentials import operator_headers
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import load_stack

# a stack start on a loaded 2-core box, then two short runs
pytestmark = [pytest.mark.stack, pytest.mark.timeout(300)]

SERVICES = ["oms", "exeq", "live-gateway", "gateway", "sink-ticks"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    where = tmp_path_factory.mktemp("bench-bus")
    builtin = where / "stack.toml"
    builtin.write_text("")  # the builtin stack as it is, at a free offset
    rd = RunDir(where / "run")
    try:
        supervisor.up(rd, load_stack(builtin, offset=free_offset(builtin)), only=SERVICES, timeout=180)
        yield rd.path
    finally:
        supervisor.down(rd, grace=2)


def _untimed(run_dir: Path, name: str, **load: object) -> str:
    """A scenario without timing SLOs: a test never asserts a timing on a shared box."""
    path = run_dir.parent / f"{name}.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in {"name": name, **load, "slo": ["errors==0"]}.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _bench(run_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    return cli_json("bench", *args, "--json", "--run-dir", str(run_dir), env=CLEAN_ENV)


def test_fill_measures_each_order_until_its_fill(run_dir: Path) -> None:
    scenario = _untimed(run_dir, "fill-untimed", model="closed", concurrency=1, requests=20,
                        warmup_requests=3)
    code, doc = _bench(run_dir, "fill", "--scenario", scenario)
    assert doc["target"] == "fill" and doc["url"].endswith("/orders"), doc
    # A request ends only at its fill: none that timed out waiting for one, none rejected.
    assert (doc["ok"], doc["errors"], doc["rejections"]) == (20, 0, 0), doc
    assert code == doc["exit_code"] and doc["status"] in ("pass", "invalid"), doc
    assert doc["latency_ms"]["p50"] > 0 and doc["cpu"]["ms_per_request"]["live-gateway"] >= 0
    # ... and the OMS saw every one of them filled.
    stack = RunDir(run_dir).stack()
    filled = httpx.get(f"{stack['oms'].base_url}/orders", params={"account": "bench", "status": "FILLED",
                                                                   "limit": 1000},
                       headers=operator_headers(run_dir), timeout=10).json()
    assert filled["count"] >= 23, filled["count"]


def test_sink_measures_each_tick_until_committed(run_dir: Path) -> None:
    stats_url = f"{RunDir(run_dir).stack()['sink-ticks'].base_url}/stats"
    before = httpx.get(stats_url, timeout=10).json()["rows_written"]
    scenario = _untimed(run_dir, "sink-untimed", model="open", rate=50.0, duration_s=2.0,
                        concurrency=2000, timeout_s=60.0)
    code, doc = _bench(run_dir, "sink", "--scenario", scenario)
    assert doc["target"] == "sink" and doc["url"] == stats_url, doc
    assert (doc["ok"], doc["errors"]) == (100, 0), doc
    assert code == doc["exit_code"] and doc["status"] in ("pass", "invalid"), doc
    # done means committed: the sink wrote at least every tick the bench counted
    assert httpx.get(stats_url, timeout=10).json()["rows_written"] - before >= 100


def test_bus_targets_refuse_a_url_with_a_command_that_runs(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "fill", "--url", "http://127.0.0.1:9", "--run-dir",
                                      str(run_dir)], env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 2
    assert "trade-ops up --only oms,exeq,live-gateway,gateway" in result.output, result.output


def _orders_in_stream(run_dir: Path) -> int:
    """How many orders.new events the ORDERS stream holds (the OMS publishes one per order it
    places, and none for an answer it replays)."""
    import asyncio

    import nats

    from services import contract
    from trade_ops.credentials import nats_login

    async def count() -> int:
        login: dict[str, Any] = dict(nats_login(run_dir))
        nc = await nats.connect(RunDir(run_dir).stack().nats_url(), **login)
        try:
            info = await nc.jetstream().stream_info(contract.ORDERS, subjects_filter=contract.ORDERS_NEW)
            return int((info.state.subjects or {}).get(contract.ORDERS_NEW, 0))
        finally:
            await nc.close()

    return asyncio.run(count())


def test_every_repeat_places_new_orders(run_dir: Path) -> None:
    """`-n 50 --repeat 3` placed 70 orders (50 + 20 warm-up): repeats 2 and 3 reused the first
    one's client_order_ids and were answered `replayed`. Counted where an order is placed."""
    scenario = _untimed(run_dir, "repeat-untimed", model="closed", concurrency=2, requests=30,
                        warmup_requests=4)
    before = _orders_in_stream(run_dir)
    code, doc = _bench(run_dir, "oms", "--scenario", scenario, "--repeat", "3")
    assert code == doc["exit_code"] and doc["status"] in ("pass", "invalid"), doc
    assert doc["repeat"] == 3 and doc["errors"] == 0 and doc["rejections"] == 0, doc
    assert _orders_in_stream(run_dir) - before == 3 * (30 + 4)
