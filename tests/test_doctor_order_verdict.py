"""doctor's order round trip reads the OMS's own verdict, and leaves nothing open.

Against a foreign OMS as the original behaved (tests/apps/foreign_oms.py, a real uvicorn
process): a 200 RISK_REJECTED is a rejection with its reason, never followed; an order that
stays SENT is cancelled and doctor says so; an OMS suspended while doctor's order is in
flight places it later, and doctor finds it and cancels it; an OMS whose OpenAPI body
schema is an untyped object teaches doctor its contract by its validation answer; an order
whose price has no source is not sent; an impostor's order without an id is not polled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from tests.apps.foreign_oms import start_foreign_oms
from tests.helpers import Proc, cli_json
from tests.test_doctor_legacy import LEGACY_TOPOLOGY, monitor_of
from trade_ops import infra
from trade_ops.cli import app

pytestmark = pytest.mark.process

GATEWAY_PRICE = ["--order", "price=50000"]


@pytest.fixture
def oms(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Proc]:
    proc = start_foreign_oms(tmp_path, *getattr(request, "param", ()))
    try:
        yield proc
    finally:
        os.kill(proc.popen.pid, signal.SIGCONT)  # a test that stopped it must not leave it stopped
        proc.stop()


def doctor(oms: Proc, *args: str) -> tuple[int, dict[str, Any]]:
    return cli_json("doctor", "--json", "--no-report", "--timeout", "1", "--trade", "--url", f"oms={oms.url}",
                    *args)


def trip_of(doc: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in doc["checks"] if c["name"] == "oms order round trip")


def seen(oms: Proc) -> dict[str, Any]:
    return dict(httpx.get(oms.url + "/_seen", timeout=5).json())


@pytest.mark.parametrize("oms", [("reject",)], indirect=True)
def test_a_200_risk_rejected_is_a_rejection_with_its_reason_never_followed(oms: Proc) -> None:
    """It was followed for 2 s, then blamed on exeq (no venue subscriber) or, with Valkey
    down, on valkey (trade-ops' OMS depends on it): here a Valkey that refuses is given too."""
    code, doc = doctor(oms, *GATEWAY_PRICE, "--valkey", f"redis://127.0.0.1:{infra.free_port()}")
    trip = trip_of(doc)
    assert code == 1 and trip["status"] == "fail"
    assert trip["data"]["rejected"]["status"] == "RISK_REJECTED"
    assert "rejected doctor's buy order" in trip["problems"][0] and "no responders" in trip["problems"][0]
    assert "stage" not in trip["data"] and "never fill" not in json.dumps(trip)
    assert seen(oms)["polls"] == 0  # never followed for fills
    # The statuses came from its schema; the cause is the OMS's own answer, no dependency's.
    assert "RISK_REJECTED" in trip["data"]["statuses"]
    assert trip["cause"] == "oms" and not trip.get("blocked_by") and trip["rests_on"] == ["its own answer"]
    assert next(c for c in doc["checks"] if c["name"] == "valkey")["status"] == "fail"
    valkey = next(c for c in doc["root_causes"] if c["name"] == "valkey")
    assert "oms order round trip" not in valkey["checks"]


@pytest.mark.parametrize("oms", [()], indirect=True)
def test_an_order_left_open_is_cancelled_and_doctor_says_so(oms: Proc) -> None:
    code, doc = doctor(oms, *GATEWAY_PRICE)
    trip = trip_of(doc)
    assert code == 1 and trip["status"] == "fail"
    assert "still SENT" in trip["problems"][0]
    assert any("doctor cancelled its buy order F-1 (it was SENT)" in d for d in trip["details"])
    after = seen(oms)
    assert after["open"] == [] and after["cancels"] == 1  # nothing left open on the OMS


@pytest.mark.parametrize("oms", [("stop",), ("stop", "no-client-id")], indirect=True)
def test_an_order_in_flight_while_the_oms_is_suspended_is_found_and_cancelled(
        oms: Proc, request: pytest.FixtureRequest) -> None:
    """After the OMS resumed, the order was placed and left open. Found by its client order id,
    or, where the OMS takes none, in the doctor account's listing."""
    def resume_later() -> None:
        process = psutil.Process(oms.popen.pid)
        deadline = time.monotonic() + 20
        while process.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.5)  # past doctor's 1 s timeout: doctor has given up waiting for the answer
        os.kill(oms.popen.pid, signal.SIGCONT)

    resumer = threading.Thread(target=resume_later)
    resumer.start()
    try:
        code, doc = doctor(oms, *GATEWAY_PRICE)
    finally:
        resumer.join()
    trip = trip_of(doc)
    assert code == 1 and "no answer within 1.0s" in trip["problems"][0]
    assert any("was placed meanwhile as F-1" in d for d in trip["details"]), trip["details"]
    assert any("doctor cancelled its buy order F-1" in d for d in trip["details"]), trip["details"]
    after = seen(oms)
    assert after["open"] == [] and after["posts"] == 1 and after["lists"] >= 1, after
    by_listing = any("looked up in the doctor account's listing" in d for d in trip["details"])
    assert by_listing == ("no-client-id" in request.node.callspec.params["oms"]), trip["details"]


def test_an_order_carried_where_no_one_hears_it_is_not_followed_for_the_whole_window(tmp_path: Path) -> None:
    """On the wire, the order went to a subject no one subscribes to and no stream keeps: it
    cannot fill, so doctor stops following it there (it waited 2x its timeout for a fill)."""
    from tests.helpers import start_nats

    nats = start_nats(tmp_path / "nats")
    oms = start_foreign_oms(tmp_path, nats_url=nats.url)
    try:
        # --timeout 2: the window is 4 s, far above the quiet margin on a loaded machine
        result = CliRunner().invoke(app, ["doctor", "--json", "--no-report", "--timeout", "2", "--trade",
                                          *GATEWAY_PRICE, "--url", f"oms={oms.url}", "--nats", nats.url,
                                          "--nats-monitor", monitor_of(nats)], catch_exceptions=False)
        trip = trip_of(json.loads(result.stdout))
        assert trip["data"]["dead_end"] is True, trip
        assert "where the wire shows it stopped" in trip["problems"][0]
        assert trip["data"]["stage"].startswith("no subscriber for desk.order.accepted: the order went "
                                                "desk.order.accepted"), trip["data"]["stage"]
        assert seen(oms)["open"] == []  # and cancelled all the same
    finally:
        oms.stop()
        nats.stop()


@pytest.mark.parametrize("oms", [("untyped",)], indirect=True)
def test_an_untyped_body_schema_is_learnt_from_the_validation_answer(oms: Proc) -> None:
    code, doc = doctor(oms, *GATEWAY_PRICE)
    trip = trip_of(doc)
    # Its 400 said `type` and upper-case sides: the order was sent again in those words,
    # placed, and followed to the stage it stopped at (SENT, never filled), not "400, no stage".
    assert "corrected by its validation answer" in trip["data"]["contract"]
    assert "order_type->type" in trip["data"]["contract"]
    assert "still SENT" in trip["problems"][0] and "stage" in trip["data"]
    assert code == 1 and seen(oms)["open"] == []


@pytest.mark.parametrize("oms", [("untyped",)], indirect=True)
def test_a_contract_doctor_cannot_meet_gets_the_stack_file_lines(oms: Proc, tmp_path: Path) -> None:
    stack = tmp_path / "stack.toml"
    stack.write_text('[contracts.order]\nfields = { order_type = "kind" }\n')
    code, doc = doctor(oms, *GATEWAY_PRICE, "--stack", str(stack))
    trip = trip_of(doc)
    assert code == 1 and "HTTP 400" in trip["problems"][0]
    assert trip["remedy"].startswith("manual step:") and "[contracts.order]" in trip["remedy"]


@pytest.mark.parametrize("oms", [()], indirect=True)
def test_no_price_source_no_order_and_how_to_give_one(oms: Proc) -> None:
    code, doc = doctor(oms)
    trip = trip_of(doc)
    assert trip["status"] == "warn" and trip["data"]["missing"] == ["price"]
    assert "--order price=VALUE" in trip["remedy"] and "[contracts.order]" in trip["remedy"]
    assert seen(oms)["posts"] == 0 and code == 0


@pytest.mark.parametrize("oms", [("strategy",)], indirect=True)
def test_a_required_field_doctor_does_not_know_is_asked_for_not_guessed(oms: Proc) -> None:
    code, doc = doctor(oms, *GATEWAY_PRICE)
    trip = trip_of(doc)
    assert code == 0 and trip["status"] == "warn" and trip["data"]["missing"] == ["strategy_id"]
    assert "--order strategy_id=VALUE" in trip["remedy"] and seen(oms)["posts"] == 0
    code, doc = doctor(oms, *GATEWAY_PRICE, "--order", "strategy_id=doctor")  # given: sent as given
    assert code == 1 and "still SENT" in trip_of(doc)["problems"][0] and seen(oms)["open"] == []


@pytest.mark.parametrize("oms", [("impostor",)], indirect=True)
def test_an_answer_without_an_order_id_is_not_polled(oms: Proc) -> None:
    code, doc = doctor(oms, *GATEWAY_PRICE)
    trip = trip_of(doc)
    assert code == 1 and "names no order id" in trip["problems"][0]
    assert seen(oms)["polls"] == 0


@pytest.mark.parametrize("oms", [("flaky-cancel",)], indirect=True)
def test_an_order_doctor_could_not_cancel_is_a_failure_with_a_cancel_that_runs(oms: Proc) -> None:
    code, doc = doctor(oms, *GATEWAY_PRICE)
    trip = trip_of(doc)
    assert code == 1 and any("still open (SENT): its cancel answered HTTP 503" in p for p in trip["problems"])
    assert seen(oms)["open"] == ["F-1"]
    done = subprocess.run(trip["remedy"], shell=True, capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "CANCELLED", trip["remedy"]
    assert seen(oms)["open"] == []


# The original's OMS also publishes `orders.accepted`, which nothing hears; its orders go on
# `orders.new` to exeq, which publishes `venue.mock.order` where no venue listens.
TOPOLOGY = LEGACY_TOPOLOGY.replace('publishes = ["orders.new"]',
                                   'publishes = ["orders.accepted", "orders.new"]')


@pytest.fixture(scope="module")
def legacy_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Proc], Proc]]:
    from tests.helpers import start_nats
    from tests.legacy_stack import start_legacy, stop_all

    nats = start_nats(tmp_path_factory.mktemp("nats"))
    try:
        roles = ("oms", "exeq", "live-gateway")
        procs = start_legacy(tmp_path_factory.mktemp("legacy"), nats.url, roles=roles)
        try:
            yield procs, nats
        finally:
            stop_all(procs)
    finally:
        nats.stop()


def test_the_stage_is_named_from_where_this_order_went(legacy_path: tuple[dict[str, Proc], Proc],
                                                       tmp_path: Path) -> None:
    """It was the first silent subject the OMS publishes ("not routed to the venue: oms
    publishes orders.accepted"), not the path the order took."""
    procs, nats = legacy_path
    stack = tmp_path / "stack.toml"
    stack.write_text(TOPOLOGY)
    urls = [a for role, p in procs.items() for a in ("--url", f"{role}={p.url}")]
    result = CliRunner().invoke(app, ["doctor", "--json", "--no-report", "--timeout", "1", "--trade",
                                      *GATEWAY_PRICE, "--stack", str(stack), "--nats", nats.url,
                                      "--nats-monitor", monitor_of(nats), *urls], catch_exceptions=False)
    trip = trip_of(json.loads(result.stdout))
    assert "stage" in trip["data"], trip
    stage = trip["data"]["stage"]
    assert stage.startswith("no venue subscriber: exeq publishes venue.mock.order"), stage
    assert "the order went orders.new -> venue.mock.order" in stage
    assert "orders.accepted" not in stage and trip["cause"] == "live-gateway"
