"""`bench --workers N --runtime docker`: the workers as containers of the service image on
the real engine, merged as local workers are; every container removed after. Short: one
second of load. Outside CI the test skips when no engine is reachable; CI runs it (it
fails there instead), as tests/test_docker.py does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from services import env
from trade_ops.bench.coordinator import run_workers
from trade_ops.bench.docker_workers import LABEL_RUN
from trade_ops.bench.runner import BenchRequest
from trade_ops.context import Context

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]  # the first use builds the service image
BASE_IMAGE = os.environ.get("TRADE_OPS_TEST_BASE_IMAGE", "local/debian-python:bookworm")


def test_workers_run_as_containers_and_are_removed(docker_engine: Any, null_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env.BASE_IMAGE, BASE_IMAGE)
    scenario = tmp_path / "short.toml"
    scenario.write_text('name = "short"\nmodel = "open"\nrate = 200.0\nduration_s = 1.0\nconcurrency = 4\n'
                        'slo = ["errors==0"]\n')
    req = BenchRequest("null", str(scenario), url=null_url, ctx=Context.resolve(tmp_path / "run"))
    outcome = run_workers(req, 2, "docker", Console(file=open(os.devnull, "w")))  # noqa: SIM115
    r = outcome.result
    rows = sorted(r.workers or [], key=lambda w: w.shard)
    assert [w.status for w in rows] == ["done", "done"], rows
    assert all(w.where.startswith("container trade-ops-bench-") and w.ended == "exit 0" for w in rows)
    assert r.requests == 200 and r.errors == 0 and [w.requests for w in rows] == [100, 100], r
    assert not docker_engine.containers.list(all=True, filters={"label": LABEL_RUN})  # none left behind
