"""`bench oms --workers 2` on a real stack (oms, risk, valkey, nats started by the supervisor
at a free port offset): the shards' orders are one run's orders (client_order_ids bench-RUN-k,
k the index in the whole schedule, so two workers never reuse one), every one answered, and
the merged run carries the stack's CPU and each worker's row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.apps.stacks import free_offset
from tests.helpers import CLEAN_ENV
from trade_ops.cli import app
from trade_ops.credentials import operator_headers
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import load_stack

# a stack start on a loaded 2-core box, then one short run
pytestmark = [pytest.mark.stack, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    where = tmp_path_factory.mktemp("workers-oms")
    builtin = where / "stack.toml"
    builtin.write_text("")
    rd = RunDir(where / "run")
    try:
        supervisor.up(rd, load_stack(builtin, offset=free_offset(builtin)), only=["oms"], timeout=180)
        yield rd.path
    finally:
        supervisor.down(rd, grace=2)


def test_two_workers_send_one_runs_orders_to_the_oms(run_dir: Path) -> None:
    scenario = run_dir.parent / "orders.toml"
    scenario.write_text('name = "orders"\nmodel = "open"\nrate = 60.0\nduration_s = 2.0\n'
                        'warmup_requests = 10\nconcurrency = 8\nslo = ["errors==0"]\n')
    result = CliRunner().invoke(app, ["bench", "oms", "--scenario", str(scenario), "--workers", "2", "--json",
                                      "--run-dir", str(run_dir)], env=CLEAN_ENV, catch_exceptions=False)
    doc = json.loads(result.stdout)
    assert (doc["requests"], doc["ok"], doc["errors"]) == (120, 120, 0), doc
    assert result.exit_code == doc["exit_code"] and doc["status"] in ("pass", "invalid"), doc
    assert [w["requests"] for w in doc["workers"]] == [60, 60]
    assert doc["cpu"]["ms_per_request"]["oms"] >= 0  # the stack's CPU, measured once for the run
    assert doc["cpu"]["generator_ms_per_request"] > 0  # the workers' own, not the waiting coordinator's
    oms = RunDir(run_dir).stack()["oms"].base_url
    orders = httpx.get(f"{oms}/orders", params={"account": "bench", "limit": 1000},
                       headers=operator_headers(run_dir), timeout=10).json()
    ids = [o["client_order_id"] for o in orders["orders"]]
    assert len(ids) == len(set(ids)) == 130  # warm-up included: each index of the schedule once
