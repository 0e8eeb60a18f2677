"""Doctor on the real 14-service stack, started by the real supervisor at a free port offset."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from tests.apps.stacks import free_stack, started
from tests.helpers import request_as, wait_until
from trade_ops import credentials
from trade_ops.cli import app
from trade_ops.doctor.round_trip import SYMBOL, position_of
from trade_ops.plan import ProcessStatus
from trade_ops.rundir import RunDir
from trade_ops.stack import Stack

pytestmark = pytest.mark.stack


def _doctor_position(stack: Stack) -> float | None:
    resp = httpx.get(f"{stack['ptrc'].base_url}/positions", params={"account": "doctor"}, timeout=5)
    return position_of(resp.json(), SYMBOL)


RECONCILE = "orders, fills, positions and lake agree"


def _lake_fills(lake: Path) -> int:
    from deltalake import DeltaTable

    try:
        return int(DeltaTable(str(lake / "fills")).to_pyarrow_table().num_rows)
    except Exception:  # TableNotFoundError: event-writer has not made its first commit yet
        return 0


def _duplicate_a_lake_fill(lake: Path) -> str:
    from deltalake import DeltaTable, write_deltalake

    # The round trip's fills reach the lake when event-writer next commits: in CI the table
    # did not exist yet when this ran (doctor's reconciliation allows the lake that lag).
    assert wait_until(lambda: _lake_fills(lake) > 0, timeout=30, interval=0.2), "no fill in the lake"
    table = DeltaTable(str(lake / "fills"))
    row = table.to_pyarrow_table().slice(0, 1)
    write_deltalake(str(lake / "fills"), row, mode="append")
    return str(row.column("fill_id")[0])


def _nats_login(run_dir: Path) -> dict[str, str]:
    """The CLI's own NATS user, when up generated credentials into the run directory."""
    from trade_ops import credentials

    creds = credentials.load(run_dir)
    user = credentials.ADMIN_USER
    return {"user": user, "password": creds.nats[user]} if creds and user in creds.nats else {}


async def _forge_fill(nats_url: str, run_dir: Path) -> None:
    import nats

    from services import contract

    fill = contract.Fill(id="forged-order-1", fill_id="forged-order-1", order_id="forged-order-1",
                         account="forger", symbol=SYMBOL, side="buy", quantity=0.001, price=1.0,
                         ts=contract.now_ms())
    nc = await nats.connect(nats_url, **_nats_login(run_dir))
    try:
        await nc.jetstream().publish(contract.fill_subject(SYMBOL), contract.encode(fill),
                                     headers={"Nats-Msg-Id": fill.id})
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, RunDir, list[ProcessStatus]]]:
    """The 14-service stack, started once for the module; the test that breaks it runs last."""
    stack, rd = free_stack(), RunDir(tmp_path_factory.mktemp("doctor-stack") / "run")
    with started(rd, stack, timeout=90) as statuses:
        yield stack, rd, statuses


CONNZ = "$SYS.REQ.SERVER.PING.CONNZ"  # every connection, its user and its subscriptions


def _nats_listens_on(rd: RunDir) -> set[int]:
    sockets = psutil.Process(rd.load_state().processes["nats"].pid).net_connections("tcp")
    return {c.laddr.port for c in sockets if c.status == psutil.CONN_LISTEN}


def test_nats_monitoring_is_the_operators_alone_and_doctor_still_reads_it(
        healthy: tuple[Stack, RunDir, list[ProcessStatus]]) -> None:
    """Issue 25: NATS monitoring (users, subscriptions, streams, consumers) was open on loopback."""
    stack, rd, _ = healthy
    # nothing but the client port: no HTTP monitoring port, where it was (8222 + the offset)
    assert _nats_listens_on(rd) == {stack["nats"].port}
    old_monitor = f"http://127.0.0.1:{8222 + stack.offset}/connz"
    with pytest.raises(httpx.ConnectError):
        httpx.get(old_monitor, timeout=2)
    # a service's own credentials read nothing of it
    for service in ("execution-quality", "oms"):  # the password read from its secrets directory
        password = (credentials.service_secrets_dir(rd.path, service) / "nats_password").read_text()
        data, errors = asyncio.run(request_as(stack.nats_url(), service, password, CONNZ))
        assert data is None and any("permissions violation" in e.lower() for e in errors), (data, errors)
    # doctor reads it as the operator's system user: connections, streams, consumers
    result = CliRunner().invoke(app, ["doctor", "--run-dir", str(rd.path), "--json", "--timeout", "3",
                                      "--no-report", "--no-trade"], catch_exceptions=False)
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    nats_check = checks["nats"]
    assert nats_check["data"]["jetstream"] is True and nats_check["status"] == "pass", nats_check
    assert set(nats_check["data"]["streams"]) >= {"ORDERS", "EXEC", "TICKS"}, nats_check["data"]
    topology = checks["messaging topology"]
    assert topology["status"] == "pass", topology
    connections = int(topology["summary"].split(" connection(s)")[0])
    assert connections >= 14, topology["summary"]  # every service's, named: none is left unmatched
    lag = checks["consumer lag"]
    assert lag["status"] != "fail" and len(lag["data"]["lags"]) >= 5, lag


def test_all_pass_on_a_healthy_14_service_stack(healthy: tuple[Stack, RunDir, list[ProcessStatus]]) -> None:
    stack, rd, statuses = healthy
    assert len([s for s in statuses if s.kind == "service"]) == 14
    # --timeout 3: generous on a loaded CI box; nothing here asserts a duration.
    result = CliRunner().invoke(app, ["doctor", "--run-dir", str(rd.path), "--json", "--timeout", "3",
                                      "--no-report"],
                                catch_exceptions=False)
    doc = json.loads(result.stdout)
    failed = [(c["name"], c["problems"]) for c in doc["checks"] if c["status"] == "fail"]
    assert result.exit_code == 0 and not failed, failed
    summary = doc["summary"]
    assert summary["infrastructure"]["total"] == 3 and summary["infrastructure"]["fail"] == 0
    warned = [(c["name"], c["problems"]) for c in doc["checks"] if c["status"] == "warn"]
    assert summary["services"] == {"pass": 14, "warn": 0, "fail": 0, "total": 14}, warned
    assert summary["functional"]["pass"] == summary["functional"]["total"] == 7
    trip = next(c for c in doc["checks"] if c["name"] == "oms order round trip")
    assert trip["data"]["order_to_fill_ms"] > 0 and "flat again" in " ".join(trip["details"])
    flat_before = _doctor_position(stack)
    second = CliRunner().invoke(app, ["doctor", "--run-dir", str(rd.path), "--timeout", "3",
                                      "--no-report"],
                                catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "Services 14/14" in second.output and "PASS" in second.output
    assert _doctor_position(stack) == flat_before  # buy then sell: the doctor account stays flat
    agree = next(c for c in doc["checks"] if c["name"] == RECONCILE)
    assert agree["status"] == "pass" and agree["data"]["fills"] >= 2, (agree["details"], agree["data"])

    # A forged fill for an order the OMS never took, and a fill row duplicated in the lake.
    duplicated = _duplicate_a_lake_fill(rd.path / "lake")
    asyncio.run(_forge_fill(stack.nats_url(), rd.path))
    third = CliRunner().invoke(app, ["doctor", "--run-dir", str(rd.path), "--json", "--timeout", "3",
                                     "--no-report", "--no-trade"], catch_exceptions=False)
    found = next(c for c in json.loads(third.stdout)["checks"] if c["name"] == RECONCILE)
    assert third.exit_code == 1 and found["status"] == "fail", (found["problems"], found["details"])
    assert "1 fill(s) for orders the OMS does not know (e.g. forged-order-1)" in found["problems"]
    assert f"1 fill id(s) written more than once to the lake's fills table (e.g. {duplicated})" \
        in found["problems"]
