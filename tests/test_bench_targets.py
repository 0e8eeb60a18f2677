"""Bench requests: flat positions, unique ids, loopback only; rejections are not errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import json_object
from trade_ops.bench.scenario import resolve
from trade_ops.bench.target import HTTP_ERROR, OK, REJECTED
from trade_ops.bench.targets import make_target
from trade_ops.errors import StackFileError, UsageError

pytestmark = pytest.mark.unit


def _body(raw: bytes) -> dict[str, Any]:
    return json_object(raw.split(b"\r\n\r\n", 1)[1])


def test_oms_orders_alternate_sides_with_unique_ids() -> None:
    t = make_target("oms", "http://127.0.0.1:8099", run_id="r1")
    bodies = [_body(t.request(i)) for i in range(4)]
    assert [b["side"] for b in bodies] == ["buy", "sell", "buy", "sell"]
    assert len({b["client_order_id"] for b in bodies}) == 4
    assert all(b["account"] == "bench" and b["quantity"] <= 0.01 for b in bodies)
    assert t.request(0).startswith(b"POST /orders HTTP/1.1\r\n")


def test_oms_classification() -> None:
    t = make_target("oms", "http://127.0.0.1:8099")
    assert t.classify(201, b"{}") == OK
    assert t.classify(422, b'{"detail":"rejected by risk: limit","result":"rejected"}') == REJECTED
    assert t.classify(422, b'{"detail":"no words to search","result":"rejected"}') == REJECTED
    assert t.classify(422, b'{"detail":"rejected by risk?","result":"invalid"}') == HTTP_ERROR
    # The original backend's OMS answers the order itself, without `result`.
    assert t.classify(422, b'{"status":"REJECTED","reason":"risk: position limit"}') == REJECTED
    assert t.classify(422, b'{"detail":[{"loc":["body","quantity"],"msg":"bad"}]}') == HTTP_ERROR
    assert t.classify(503, b"{}") == HTTP_ERROR


def test_remote_targets_are_refused() -> None:
    with pytest.raises(UsageError, match="--allow-remote"):
        make_target("gateway", "http://10.1.2.3:8080")
    assert make_target("gateway", "http://10.1.2.3:8080", allow_remote=True).path == "/tickers"


def test_http_template() -> None:
    t = make_target("http", "http://localhost:9/x?q=1", body='{"n": $i, "side": "$side"}')
    assert t.request(3).startswith(b"POST /x?q=1 HTTP/1.1")
    assert _body(t.request(3)) == {"n": 3, "side": "sell"}


def test_scenarios_resolve_and_flags_override() -> None:
    sc = resolve(None, {})
    assert sc.name == "latency" and sc.definition["model"] == "closed"
    over = resolve("latency", {"rate": 50.0, "duration_s": 2.0, "slo": ["p50<1ms"]})
    assert over.definition["model"] == "open" and "requests" not in over.definition
    assert over.definition["slo"][-1] == "p50<1ms" and over.hash != sc.hash
    for name in ("load", "rate", "soak", "capacity"):
        assert resolve(name, {}).definition["slo"]
    with pytest.raises(UsageError, match="unknown scenario"):
        resolve("nope", {})


def test_bad_scenario_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('rate = "fast"\n')
    with pytest.raises(StackFileError, match="rate must be float"):
        resolve(str(bad), {})


def test_sink_ticks_are_the_request_alone_with_unique_ids() -> None:
    from trade_ops.bench.bus_targets import SINK_SYMBOL, NatsAccess

    t = make_target("sink", "http://127.0.0.1:8111", run_id="r1", nats=NatsAccess("nats://127.0.0.1:4222"))
    ticks = [json_object(t.request(i)) for i in range(3)]  # no HTTP head: a bus message
    assert len({tick["id"] for tick in ticks}) == 3 and {tick["symbol"] for tick in ticks} == {SINK_SYMBOL}
    assert t.name == "sink" and t.url == "http://127.0.0.1:8111/stats" and t.port == 8111
    assert t.classify(200, b"") == OK


def test_fill_orders_are_the_oms_targets_orders() -> None:
    from trade_ops.bench.bus_targets import NatsAccess

    t = make_target("fill", "http://127.0.0.1:8099", run_id="r1", nats=NatsAccess("nats://127.0.0.1:4222"))
    oms = make_target("oms", "http://127.0.0.1:8099", run_id="r1")
    assert t.name == "fill" and t.request(3) == oms.request(3)
    assert t.classify(422, b'{"result":"rejected"}') == REJECTED
    assert "fill" in t.describe["done_at"]


@pytest.mark.parametrize("kind", ["fill", "sink"])
def test_bus_targets_need_the_stacks_nats(kind: str) -> None:
    with pytest.raises(UsageError, match="NATS"):
        make_target(kind, "http://127.0.0.1:8099")


def test_the_sink_runs_its_own_scenario_by_default() -> None:
    from trade_ops.bench.scenario import default_scenario

    assert default_scenario("oms") == default_scenario("fill") == "latency"
    sc = resolve(default_scenario("sink"), {})
    assert sc.name == "sink" and sc.definition["model"] == "open" and sc.definition["timeout_s"] > 5
