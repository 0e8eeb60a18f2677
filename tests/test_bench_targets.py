"""Bench requests: flat positions, unique ids, loopback only; rejections are not errors."""

from __future__ import annotations

import orjson
import pytest

from trade_ops.bench.scenario import resolve
from trade_ops.bench.targets import HTTP_ERROR, OK, REJECTED, make_target
from trade_ops.errors import StackFileError, UsageError


def _body(raw: bytes) -> dict:
    return orjson.loads(raw.split(b"\r\n\r\n", 1)[1])


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


def test_bad_scenario_file(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('rate = "fast"\n')
    with pytest.raises(StackFileError, match="rate must be float"):
        resolve(str(bad), {})
