"""Evidence and the own/foreign split, without processes: what each defect of issue 23 looked like."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from services.kit.health import Check, health_document
from trade_ops.doctor import evidence
from trade_ops.doctor.check_dataflow import sink_progress
from trade_ops.doctor.check_posture import open_admin_endpoints
from trade_ops.doctor.check_services import judge_health, says_own
from trade_ops.doctor.check_topology import related
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.rootcause import GRAPH, assign
from trade_ops.stack import load_stack

pytestmark = pytest.mark.unit

NAMES = load_stack().components


# -- addresses in error texts -------------------------------------------------------------------
def test_an_ip_and_port_is_the_component_given_there_or_an_external_by_host_and_port() -> None:
    text = "Error 111 connecting to 127.0.0.1:53379. Connection refused."
    given = evidence.from_text(text, {"127.0.0.1:53379": "valkey"}, NAMES, "pnl")
    assert [(n.name, n.external, n.source) for n in given] == [("valkey", False, "error text")]
    # Not given: an external named by host and port (it was "127", with "make 127 reachable").
    alone = evidence.from_text(text, {}, NAMES, "pnl")
    assert [(n.name, n.external) for n in alone] == [("127.0.0.1:53379", True)]


@pytest.mark.parametrize(("text", "found"), [
    ("QuestDB connection failed: [Errno -2] Name or service not known (questdb:9000)", "questdb:9000"),
    ("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 4222)", "nats"),
    ("error sending request for url (http://localhost:9000/bucket/lake/_delta_log/)", "lake"),
    ("nats: no servers available; tried nats://127.0.0.1:4222", "nats"),
    ("Error -2 connecting to redis:6379. Name or service not known.", "valkey"),
])
def test_the_address_forms_of_redis_nats_and_s3_errors(text: str, found: str) -> None:
    directory = {"127.0.0.1:4222": "nats", "127.0.0.1:9000": "lake"}
    assert [n.name for n in evidence.from_text(text, directory, NAMES)] == [found]


@pytest.mark.parametrize("text", ["status:500 after 12:30:45", "version 1.2:3", "Error 111", "l2_cache"])
def test_a_fragment_that_is_no_address_names_nothing(text: str) -> None:
    assert evidence.from_text(text, {}, NAMES) == []


def test_a_check_key_names_a_dependency_only_when_it_is_a_component() -> None:
    checks = {"l2_cache": False, "redis": False, "nats_connected": False}
    assert [n.name for n in evidence.from_checks(checks, NAMES)] == ["valkey", "nats"]


# -- a health body read whole ---------------------------------------------------------------
def test_a_healthy_body_that_says_disconnected_is_a_warning_with_the_field() -> None:
    verdict = judge_health(200, {"status": "healthy", "nats_connected": False, "mode": "SHADOW"})
    assert verdict.status == "warn" and verdict.details[0] == "says 'healthy' while nats_connected: false"
    assert "nats_connected: false" in verdict.details and "mode: SHADOW" in verdict.details
    assert [n.name for n in evidence.from_fields(verdict.fields, NAMES)] == ["nats"]
    nested = judge_health(200, {"status": "ok", "components": {"db": {"status": "down"}},
                                "details": {"redis": False, "workers": 3}})
    assert nested.status == "warn" and set(nested.fields) == {"components.db", "details.redis"}
    # Fields that say nothing about health stay quiet.
    quiet = judge_health(200, {"status": "ok", "backup_enabled": False, "kill_switch": False, "count": 0,
                               "log_level": "error", "details": {"debug": False, "color": "red"}})
    assert quiet.status == "pass" and quiet.fields == {}
    said = judge_health(200, {"status": "ok", "nats": "disconnected", "details": {"db_connection": "closed"}})
    assert said.status == "warn" and set(said.fields) == {"nats", "details.db_connection"}


def test_a_trade_ops_body_says_it_is_one_and_reads_clean() -> None:
    doc = health_document("oms", "1", [Check("valkey", "responseTime", "pass", "datastore")])
    assert says_own(doc) and judge_health(200, doc).status == "pass" and judge_health(200, doc).fields == {}
    assert not says_own({"status": "healthy"})


# -- root causes: trade-ops' graph for its own services only ------------------------------------
def _failed(name: str, group: Any, component: str, **kw: Any) -> CheckResult:
    r = CheckResult(name, group, component=component, **kw)
    return r.fail(f"{name} is broken", f"manual step: fix {component}")


def test_a_foreign_service_has_no_edges_from_trade_ops_graph() -> None:
    """ptrc dead, pnl failing for a reason it does not name: trade-ops' graph (pnl -> ptrc)
    made it "cause=ptrc"; a foreign pnl is its own cause."""
    stack = load_stack()
    ptrc = _failed("ptrc", "services", "ptrc")
    ptrc.data["unreachable"] = True

    def results() -> list[CheckResult]:
        return [CheckResult("nats", "infrastructure", component="nats"), ptrc,
                _failed("pnl", "services", "pnl")]

    own = results()
    assign(own, stack)  # trade-ops' own pnl: the graph, as a prior
    assert own[2].cause == "ptrc" and own[2].rests_on == [GRAPH]
    foreign = results()
    causes = assign(foreign, stack, own={"nats", "ptrc"})
    assert foreign[2].cause == "pnl" and foreign[2].blocked_by == []
    assert {c.name: c.dependents for c in causes} == {"ptrc": [], "pnl": []}


@pytest.mark.parametrize("down", ["valkey", "nats", "lake"])
def test_a_foreign_check_is_not_blamed_on_infrastructure_it_never_named(down: str) -> None:
    """An OMS that answered 200 RISK_REJECTED, a risk /check that crashes: trade-ops' OMS and
    risk need valkey, theirs said nothing of it."""
    stack = load_stack()
    infra = _failed(down, "infrastructure", down)
    trip = _failed("oms order round trip", "functional", "oms", needs=("risk", "exeq", "live-gateway"))
    check = _failed("risk approves a small order", "functional", "risk")
    results = [infra, CheckResult("oms", "services", component="oms"),
               CheckResult("risk", "services", component="risk"), trip, check]
    causes = assign(results, stack, own={"valkey", "nats", "lake"})
    assert (trip.cause, check.cause) == ("oms", "risk") and not trip.blocked_by and not check.blocked_by
    assert {c.name for c in causes} == {down, "oms", "risk"}


# -- topology, posture, data flow -----------------------------------------------------------
def test_a_filter_related_to_what_flows_and_never_matching_it() -> None:
    assert related("market.tick.*.*", "market.tick.BTCUSDT")
    assert not related("market.tick.*", "market.tick.BTCUSDT")  # it matches
    assert not related("orders.cancel", "orders.new") and not related("exec.fill.>", "exec.cancelled")


def _server(subs: list[str], filters: dict[str, list[str]] | None = None) -> Any:
    from trade_ops.doctor.check_topology import Connection, Consumer, Server

    conn = Connection(1, "normalizer", "normalizer", "127.0.0.1:5", subs, 0, False)
    consumers = [Consumer(stream, "c", None, f, 0) for stream, f in (filters or {}).items()]
    return Server({"normalizer": subs}, {s: [">"] for s in filters or {}}, consumers, [conn])


def test_the_wire_sample_ends_only_once_more_listening_can_change_no_verdict() -> None:
    from trade_ops.doctor.check_topology import RELATED_ENOUGH, settled

    ticks = Counter({"market.tick.BTCUSDT": RELATED_ENOUGH})
    assert settled(_server(["market.tick.>"]), ticks, {})  # it matched
    assert settled(_server(["market.tick.*.*"]), ticks, {})  # missed enough related messages
    assert not settled(_server(["market.tick.*.*"]), Counter({"market.tick.BTCUSDT": 1}), {})
    assert not settled(_server(["exec.fill.>"]), ticks, {})  # nothing related yet: the whole window
    # A consumer filter is judged against what its stream holds, else against what flows.
    assert not settled(_server([], {"AUDIT": ["audit.*.*"]}), ticks, {})
    assert settled(_server([], {"AUDIT": ["audit.*.*"]}), ticks, {"AUDIT": ["audit.order"]})
    assert settled(_server([], {"TICKS": ["market.tick.>"]}), ticks, {})


def test_orders_listed_against_the_fills_kept() -> None:
    from trade_ops.doctor.reconcile_foreign import Fills, FillSource, Listing, judge_foreign
    from trade_ops.order_contract import Verdict

    listing = Listing("GET /orders", {"a": Verdict.FILLED, "b": Verdict.FILLED, "c": Verdict.ACCEPTED})
    listing.statuses.update({"FILLED": 2, "SENT": 1})
    source = FillSource("TRADES", ">", None, "stack file")
    fills = Fills([source], orders=Counter({"a": 1}), count=1)
    r = CheckResult("agree", "dataflow")
    judge_foreign(listing, fills, "", r)
    assert r.status == "fail" and r.problems[0].startswith("1 of 2 order(s) the OMS lists as FILLED have "
                                                           "no fill in stream TRADES (e.g. b)")
    partial = CheckResult("agree", "dataflow")  # older fills may be outside the window: not judged
    judge_foreign(listing, Fills([source], orders=Counter({"a": 1}), count=1, whole=False), "", partial)
    assert partial.status == "pass" and "not judged" in partial.details[-1]
    none = CheckResult("agree", "dataflow")
    judge_foreign(listing, None, "no NATS is examined here", none)
    assert none.status == "warn" and "lists 3 order(s) (2 FILLED, 1 SENT)" in none.problems[0]
    open_only = Listing("GET /orders", {"c": Verdict.ACCEPTED})
    empty = CheckResult("agree", "dataflow")
    judge_foreign(open_only, Fills([source]), "", empty)
    assert empty.status == "warn" and "none FILLED, and stream TRADES holds no fill" in empty.problems[0]
    strangers = CheckResult("agree", "dataflow")  # fills kept, but for none of the listed orders
    judge_foreign(open_only, Fills([source], orders=Counter({"z": 1}), count=1), "", strangers)
    assert strangers.status == "warn" and "holds 1 fill(s), none for a listed order" in strangers.problems[0]
    nothing = CheckResult("agree", "dataflow")
    judge_foreign(Listing("GET /orders"), None, "no NATS", nothing)
    assert nothing.status == "pass" and nothing.summary.startswith("nothing to reconcile")


def test_open_admin_endpoints_are_read_from_the_openapi() -> None:
    doc = {"paths": {"/orders": {"post": {}}, "/orders/{id}": {"delete": {}}, "/check": {"post": {}},
                     "/panic": {"post": {}}, "/mode": {"put": {}, "get": {}},
                     "/flatten": {"post": {"security": [{"bearer": []}]}}}}
    assert open_admin_endpoints(doc) == ["POST /panic", "PUT /mode"]
    assert open_admin_endpoints({**doc, "security": [{"bearer": []}]}) == []  # required everywhere
    assert open_admin_endpoints({**doc, "security": [{"bearer": []}],
                                 "paths": {"/kill": {"post": {"security": []}}}}) == ["POST /kill"]


def test_a_sink_count_nested_in_its_stats_is_read() -> None:
    assert sink_progress({"service": "sink", "stats": {"ticks": {"rows_written": 561}}})[0] == 561
    assert sink_progress({"sinks": {"a": {"rows": 2}, "b": {"rows": 3}}})[0] == 5
    assert sink_progress({"uptime": 5})[0] is None


def test_no_fill_found_while_the_oms_holds_orders_is_not_agreement() -> None:
    from trade_ops.doctor.reconcile import judge

    empty = {"fills": [], "orders": {}, "whole_history": True, "lake_fill_ids": None, "positions": {}}
    r = CheckResult("agree", "dataflow")
    judge({**empty, "orders_held": True}, r, {"oms": "trade-ops logs oms"})
    assert r.status == "warn" and "while the OMS holds orders" in r.problems[0]
    quiet = CheckResult("agree", "dataflow")
    judge({**empty, "orders_held": False}, quiet)
    assert quiet.status == "pass" and quiet.summary == "0 fills, 0 orders agree"


@pytest.mark.parametrize("strict", [False, True])
def test_strict_turns_the_oms_loopback_note_into_a_warning_like_every_other(strict: bool) -> None:
    from pathlib import Path

    from trade_ops.context import Context
    from trade_ops.doctor.check_posture import _Posture
    from trade_ops.doctor.target import build_target

    target = build_target(Context.resolve(Path("/nonexistent-run")), urls={"oms": "http://127.0.0.1:9"})
    r = CheckResult("posture oms", "configuration", component="oms")
    _Posture(target, strict).judge(r, target.stack["oms"], "127.0.0.1", True, "orders without a token",
                                    "start oms with account tokens", by_up=False)
    text = " ".join(r.details)
    if strict:  # it said "--strict warns" and passed under --strict
        assert r.status == "warn" and "--strict" in r.problems[0]
        assert r.remedy is not None and r.remedy.startswith("manual step: ")
    else:
        assert r.status == "pass" and "fine on loopback, --strict warns" in text
