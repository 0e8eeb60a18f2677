"""The order contract (trade_ops/order_contract.py): the one reader of an OMS's order and
answer, for doctor and bench alike. Pure logic: no process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trade_ops.order_contract import Verdict, builtin, from_openapi, from_table, learn, table_lines

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("code", "doc", "verdict", "status"), [
    (201, {"order_id": "o1", "status": "ACCEPTED", "result": "accepted"}, Verdict.ACCEPTED, "ACCEPTED"),
    (422, {"detail": "rejected by risk: limit", "result": "rejected"}, Verdict.REJECTED, None),
    (422, {"detail": [{"loc": ["body", "qty"], "msg": "bad"}], "result": "invalid"}, Verdict.INVALID, None),
    (200, {"id": "F-1", "status": "RISK_REJECTED", "reason": "no responders"}, Verdict.REJECTED,
     "RISK_REJECTED"),
    (200, {"id": "F-1", "status": "SENT"}, Verdict.ACCEPTED, "SENT"),
    (200, {"order": {"id": "F-1", "state": "partially_filled"}}, Verdict.ACCEPTED, "PARTIALLY_FILLED"),
    (200, {"id": "F-1", "status": "FILLED"}, Verdict.FILLED, "FILLED"),
    (200, {"id": "F-1", "status": "CANCELED"}, Verdict.ENDED, "CANCELED"),
    (200, {"error": "risk service unavailable"}, Verdict.REJECTED, None),
    (200, ["not", "an", "order"], Verdict.ERROR, None),
    (503, {"detail": "valkey down", "result": "unavailable"}, Verdict.ERROR, None),
])
def test_an_answer_is_read_as_the_oms_says(code: int, doc: Any, verdict: Verdict, status: str | None) -> None:
    reading = builtin().read(code, doc)
    assert (reading.verdict, reading.status) == (verdict, status)


def test_a_reading_shows_the_oms_words_once() -> None:
    said = builtin().read(200, {"status": "RISK_REJECTED", "reason": "RISK_REJECTED: no responders"})
    assert said.shown() == "RISK_REJECTED: no responders"
    assert builtin().read(200, {"status": "REJECTED", "reason": "limit"}).shown() == "REJECTED: limit"


def test_rejections_listed_in_the_stack_file_and_the_fast_path_agree() -> None:
    contract = from_table({"rejected": ["BLOCKED"]}, "table")
    for body in (b'{"id":"1","status":"BLOCKED"}', b'{"id":"1","status":"RISK_REJECTED"}',
                 b'{"result":"rejected","detail":"kill switch"}'):
        code = 422 if b"result" in body else 200
        assert contract.rejects(code, body)
        assert contract.read(code, json.loads(body)).verdict == Verdict.REJECTED
    assert not contract.rejects(201, b'{"order_id":"1","status":"ACCEPTED"}')
    assert not contract.rejects(400, b'{"error":"Order validation failed"}')  # invalid, not a rejection


def _openapi(body: dict[str, Any]) -> dict[str, Any]:
    answer = {"content": {"application/json": {"schema": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["SENT", "FILLED", "RISK_REJECTED"]}}}}}}
    return {"paths": {"/orders": {"post": {"requestBody": {"content": {"application/json": {"schema": body}}},
                                           "responses": {"200": answer}}}}}


def test_the_schema_gives_fields_statuses_and_requirements() -> None:
    contract = from_openapi(_openapi({"type": "object", "required": ["symbol", "type", "strategy_id"],
                                      "properties": {"symbol": {}, "side": {"enum": ["BUY", "SELL"]},
                                                     "type": {"enum": ["LIMIT"]}, "quantity": {},
                                                     "strategy_id": {}}}), "/orders", "schema")
    assert contract is not None and contract.described
    assert contract.names["order_type"] == "type"
    assert contract.values["side"] == {"buy": "BUY", "sell": "SELL"}
    assert contract.statuses == ("SENT", "FILLED", "RISK_REJECTED")
    assert contract.rejections() == {"RISK_REJECTED"}
    assert contract.needs_price  # no MARKET there: a LIMIT needs its price
    assert contract.missing({"price": 1.0}) == ["strategy_id"]
    assert contract.missing({"strategy_id": "x"}) == []
    assert contract.body({"side": "buy", "order_type": "LIMIT", "account": "doctor", "strategy_id": "x"}) == \
        {"side": "BUY", "type": "LIMIT", "strategy_id": "x"}  # account: not in this contract


def test_an_untyped_body_is_learnt_from_the_validation_answer() -> None:
    contract = from_openapi(_openapi({"type": "object"}), "/orders", "schema")
    assert contract is not None and not contract.described
    answer = json.dumps({"error": "Order validation failed", "details": [
        "type is required", "price is required", "unknown field order_type", "unknown field account",
        "unknown field time_in_force", "side must be one of ['BUY', 'SELL']"]})
    learnt = learn(contract, answer)
    assert learnt is not None and learnt.described
    assert learnt.names["order_type"] == "type" and "account" not in learnt.names
    assert learnt.values["side"] == {"buy": "BUY", "sell": "SELL"} and learnt.needs_price
    assert learn(learnt, answer) is None  # nothing more to learn: doctor sends it once more at most
    lines = table_lines(learnt)
    assert lines.startswith("[contracts.order]\nfields = { order_type = \"type\"")
    assert 'account = ""' in lines and 'required = ["order_type", "price"]' in lines
