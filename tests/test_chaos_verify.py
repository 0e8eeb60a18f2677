"""The chaos verdict (trade_ops/chaos/verify.py) on hand-built evidence: each violation
is named, and a clean run passes. Pure logic: no servers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec
import pytest

from trade_ops.chaos.faults import parse_faults
from trade_ops.chaos.verify import Evidence, judge
from trade_ops.errors import UsageError

pytestmark = pytest.mark.unit


def _order(oid: str, coid: str, status: str = "FILLED", filled: float = 1.0) -> dict[str, Any]:
    return {"order_id": oid, "client_order_id": coid, "status": status, "filled_quantity": filled,
            "quantity": 1.0}


def _fill(oid: str, coid: str, n: int = 1, qty: float = 1.0, side: str = "buy") -> dict[str, Any]:
    return {"fill_id": f"{oid}-{n}", "order_id": oid, "client_order_id": coid, "symbol": "BTCUSDT",
            "side": side, "quantity": qty}


def _clean() -> tuple[Evidence, dict[str, int]]:
    ev = Evidence(orders={"c1": _order("o1", "c1"), "c2": None},
                  published={"o1": "c1"}, fills=[_fill("o1", "c1")],
                  ptrc_trades=[{"fill_id": "o1-1"}], ptrc_positions={"BTCUSDT": 1.0},
                  lake_orders={"o1"}, lake_fill_rows=Counter({"o1-1": 1}))
    return ev, {"c1": 201, "c2": 503}


def test_a_clean_run_passes() -> None:
    ev, answers = _clean()
    verdict = judge(ev, answers)
    assert verdict.passed and verdict.settled, verdict


def test_a_201_that_is_not_readable_or_not_published_is_lost_and_a_late_one_unsettled() -> None:
    ev, answers = _clean()
    ev.orders["c1"] = None
    assert judge(ev, answers).lost == ["c1: answered 201, GET /orders?client_order_id= finds nothing"]
    ev, answers = _clean()
    ev.published = {}
    assert "not in the orders stream" in judge(ev, answers).lost[0]
    ev, answers = _clean()
    ev.lake_orders = set()
    verdict = judge(ev, answers)
    assert "not in the lake" in verdict.unsettled[0] and not verdict.settled
    assert verdict.safe and not verdict.passed


def test_a_fill_of_an_order_answered_503_is_traded_after_error() -> None:
    ev, answers = _clean()
    ev.published["o2"] = "c2"
    ev.fills.append(_fill("o2", "c2", side="sell"))
    ev.ptrc_trades = [{"fill_id": "o1-1"}, {"fill_id": "o2-1"}]
    ev.ptrc_positions = {"BTCUSDT": 0.0}
    ev.lake_fill_rows = Counter({"o1-1": 1, "o2-1": 1})
    verdict = judge(ev, answers)
    assert verdict.traded_after_error == ["c2 (o2): answered 503, yet 1 fill(s)"]
    assert not verdict.lost and not verdict.duplicated


@pytest.mark.parametrize("break_it", ["lake", "ptrc", "position", "oms"])
def test_a_fill_applied_twice_anywhere_is_duplicated(break_it: str) -> None:
    ev, answers = _clean()
    if break_it == "lake":
        ev.lake_fill_rows = Counter({"o1-1": 2})
    elif break_it == "ptrc":
        ev.ptrc_trades = [{"fill_id": "o1-1"}, {"fill_id": "o1-1"}]
    elif break_it == "position":
        ev.ptrc_positions = {"BTCUSDT": 2.0}
    else:
        assert ev.orders["c1"] is not None
        ev.orders["c1"]["filled_quantity"] = 2.0
    assert judge(ev, answers).duplicated


def test_a_fill_republished_on_the_stream_is_a_note_not_a_violation() -> None:
    ev, answers = _clean()
    ev.fills.append(_fill("o1", "c1"))
    verdict = judge(ev, answers)
    assert verdict.passed and "more than once" in verdict.notes[0]


def test_fault_specs() -> None:
    faults = parse_faults(["valkey-kill@5+2", "service-kill oms", "burst 100"], ["oms", "risk"])
    assert [f.label for f in faults] == ["valkey-kill@5+2", "service-kill oms@9+2", "burst 100@13+2"]
    for bad in ("valkey-explode", "service-kill", "service-kill nope", "burst lots", "nats-stop oms"):
        with pytest.raises(UsageError):
            parse_faults([bad], ["oms", "risk"])


def test_a_position_behind_its_fills_is_unsettled_not_duplicated() -> None:
    ev, answers = _clean()
    ev.ptrc_trades, ev.ptrc_positions = [], {}  # ptrc has not applied the fill yet
    verdict = judge(ev, answers)
    assert verdict.safe and not verdict.settled, verdict


def test_the_chaos_result_is_typed_and_its_json_keeps_the_shape_it_had() -> None:
    from trade_ops.chaos.result import ChaosResult, Examples, FaultRun, HealthSeen

    result = ChaosResult(
        run_id="chaos-1", account="chaos-1", rate=100.0, duration_s=5.0,
        faults=[FaultRun(fault="valkey-kill@1+2", began_s=1.0, ended_s=3.0, notes=[])], sent=500,
        acknowledged=480, first_answers={"201": 480, "503": 20}, final_answers={"201": 480, "503": 20},
        retried=0, recovery_s={"valkey-kill@1+2": 0.4}, lost=0, traded_after_error=0, duplicated=1,
        unsettled=0, safe=False, settled=True, passed=False,
        examples=Examples(lost=[], unsettled=[], traded_after_error=[], duplicated=["o-7: 2 fills"]),
        notes=[], unclear_after_retries=[], health=HealthSeen(worst={"oms": "warn"}, not_pass={}),
        load_average=[1.0, 1.0, 1.0], report="/r.json")
    doc = result.to_json()
    # the keys the CLI's --json, the report file, the JUnit and markdown renderers have read
    assert list(doc) == ["run_id", "account", "rate", "duration_s", "faults", "sent", "acknowledged",
                         "first_answers", "final_answers", "retried", "recovery_s", "lost",
                         "traded_after_error", "duplicated", "unsettled", "safe", "settled", "passed",
                         "examples", "notes", "unclear_after_retries", "health", "load_average", "report"]
    assert doc["faults"][0] == {"fault": "valkey-kill@1+2", "began_s": 1.0, "ended_s": 3.0, "notes": []}
    assert doc["health"] == {"worst": {"oms": "warn"}, "not_pass": {}}
    assert msgspec.json.decode(msgspec.json.encode(doc), type=ChaosResult) == result
    with pytest.raises(msgspec.ValidationError):  # a document of another shape is refused
        msgspec.json.decode(msgspec.json.encode({**doc, "lost": "none"}), type=ChaosResult)
