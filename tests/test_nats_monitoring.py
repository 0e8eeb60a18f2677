"""NATS monitoring is the operator's (issue 25, deliverable 6): trade-ops' NATS opens no HTTP
monitoring port, its operator reads the same documents through the system account, and a
service's own credentials read none of it. The whole stack after `up`: test_doctor_stack.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
import pytest

from services import contract
from services import provision as topology
from tests.helpers import Proc, cli_json, request_as, start_nats
from trade_ops import credentials, infra, nats_system, permissions
from trade_ops.credentials import ADMIN_USER, SYSTEM_ACCOUNT, SYSTEM_USER
from trade_ops.doctor import check_infra, monitoring
from trade_ops.doctor.model import CheckResult
from trade_ops.doctor.target import Target
from trade_ops.rundir import RunDir
from trade_ops.stack import load_stack

SERVICES = ["oms", "risk", "execution-quality"]
ENDPOINTS = {"varz": {}, "connz": {"subscriptions_detail": True}, "jsz": {"streams": True, "consumer": True},
             "healthz": {"js-enabled-only": True}}


def _config(run: Path) -> tuple[credentials.Credentials, Path]:
    creds, _ = credentials.ensure(run, [*SERVICES, SYSTEM_USER], valkey_users=[])
    return creds, credentials.write_nats_config(run, creds, permissions.nats_permissions(SERVICES))


@pytest.mark.unit
def test_the_system_user_alone_is_in_the_system_account(tmp_path: Path) -> None:
    creds, path = _config(tmp_path)
    text = path.read_text()
    users, _, accounts = text.partition("accounts {")
    assert f'"user": "{SYSTEM_USER}"' in accounts and f'"user": "{SYSTEM_USER}"' not in users
    assert all(f'"user": "{name}"' in users for name in (*SERVICES, ADMIN_USER))
    assert f"system_account = {SYSTEM_ACCOUNT}" in text
    assert path.stat().st_mode & 0o777 == 0o600
    login = credentials.system_login(tmp_path, "nats://127.0.0.1:4222")
    assert login is not None and login.password == creds.nats[SYSTEM_USER]
    assert creds.nats[SYSTEM_USER] not in repr(login)  # a login printed shows no password


@pytest.mark.unit
def test_a_nats_not_listening_yet_is_not_ready_and_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """`up` polls its NATS until it answers: nats-py printed a traceback per refused try."""
    login = nats_system.SystemLogin(f"nats://127.0.0.1:{infra.free_port()}", SYSTEM_USER, "unused")
    with caplog.at_level(logging.DEBUG):
        why = nats_system.unhealthy(login, 0.5)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    # refused at once, said so: nats-py retried a first connect until the probe's own deadline
    assert why is not None and why.startswith(f"cannot connect to {login.url}"), why


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A NATS as `up` starts it (users, permissions, the system user; the operator's topology),
    and one of another deployment's shape beside it: the same, with an HTTP monitoring port."""
    run = tmp_path_factory.mktemp("monitoring-run")
    creds, conf = _config(run)
    system = (SYSTEM_USER, creds.nats[SYSTEM_USER])
    own = start_nats(run, conf, system=system, monitor=False)
    try:
        asyncio.run(_provision(own.url, creds))
        yield {"run": run, "creds": creds, "nats": own, "system": system}
    finally:
        own.stop()


async def _provision(url: str, creds: credentials.Credentials) -> None:
    nc = await nats.connect(url, user=ADMIN_USER, password=creds.nats[ADMIN_USER])
    try:
        await topology.provision(nc.jetstream())
    finally:
        await nc.close()


def _listening(proc: Proc) -> set[int]:
    return {c.laddr.port for c in psutil.Process(proc.popen.pid).net_connections("tcp")
            if c.status == psutil.CONN_LISTEN}


@pytest.mark.process
def test_own_nats_listens_on_its_client_port_alone(secured: dict[str, Any]) -> None:
    assert _listening(secured["nats"]) == {secured["nats"].port}


@pytest.mark.process
@pytest.mark.parametrize("service", SERVICES)
def test_a_service_cannot_read_monitoring(secured: dict[str, Any], service: str) -> None:
    """As the service itself, with its own password: every monitoring request is refused."""
    password = secured["creds"].nats[service]
    for endpoint in ENDPOINTS:
        subject = f"$SYS.REQ.SERVER.PING.{endpoint.upper()}"
        data, errors = asyncio.run(request_as(secured["nats"].url, service, password, subject))
        assert data is None, (service, subject, data[:200] if data else None)
        refused = [e for e in errors if "permissions violation" in e.lower() and subject.lower() in e.lower()]
        assert refused, errors


@pytest.mark.process
def test_the_system_user_reads_every_endpoint(secured: dict[str, Any]) -> None:
    login = nats_system.SystemLogin(secured["nats"].url, *secured["system"])

    async def read_all() -> dict[str, dict[str, Any]]:
        nc = await nats_system.connect(login, 2.0, "test")
        try:
            return {e: await nats_system.read(nc, e, opts, 2.0) for e, opts in ENDPOINTS.items()}
        finally:
            await nc.close()

    docs = asyncio.run(read_all())
    assert docs["healthz"]["status"] == "ok"
    assert docs["varz"]["http_port"] == 0  # no HTTP monitoring port
    streams = {s["name"]: s for a in docs["jsz"]["account_details"] for s in a["stream_detail"]}
    assert set(streams) == set(contract.STREAMS)
    durables = {c["name"] for s in streams.values() for c in s.get("consumer_detail") or []}
    assert {d.name for needs in contract.TOPOLOGY.values() for d in needs.durables} <= durables
    assert any(c.get("name") == "test" for c in docs["connz"]["connections"])
    why = nats_system.unhealthy(replace(login, password="wrong"))
    assert why is not None and "authorization" in why.lower() and "restart it" in why, why


def _target(nats_proc: Proc, run: Path, login: nats_system.SystemLogin | None, monitor: str | None) -> Target:
    stack = load_stack()
    nats_c = replace(stack["nats"], port=nats_proc.port, monitor_port=None)
    return Target(stack=stack, run_dir=RunDir(run), services=[], infra=[nats_c], timeout=2.0,
                  nats_system=login, nats_monitor=monitor)


@pytest.mark.process
def test_doctor_reads_its_own_nats_through_the_system_account(secured: dict[str, Any]) -> None:
    login = nats_system.SystemLogin(secured["nats"].url, *secured["system"])
    target = _target(secured["nats"], secured["run"], login, None)
    r = CheckResult("nats", "infrastructure", component="nats")

    async def run() -> None:
        async with httpx.AsyncClient() as http:
            try:
                await check_infra.check_nats(target, http, target.infra[0], r)
            finally:
                await monitoring.close(target)

    asyncio.run(run())
    assert r.status == "pass" and r.data["jetstream"] is True, (r.problems, r.details)
    assert sorted(r.data["streams"]) == sorted(contract.STREAMS)
    assert r.data["monitor"] == f"the system account at {secured['nats'].url}"
    assert json.dumps(r.data).find(secured["system"][1]) == -1  # no password in what doctor shows


@pytest.mark.process
def test_http_and_system_readings_agree(tmp_path: Path, secured: dict[str, Any]) -> None:
    """Another deployment's NATS is read over HTTP as before; the same documents either way."""
    run = tmp_path / "run"
    creds, conf = _config(run)
    both = start_nats(tmp_path, conf, system=(SYSTEM_USER, creds.nats[SYSTEM_USER]))
    try:
        asyncio.run(_provision(both.url, creds))
        monitor = next(f"http://127.0.0.1:{p}" for p in _listening(both) if p != both.port)
        login = nats_system.SystemLogin(both.url, SYSTEM_USER, creds.nats[SYSTEM_USER])
        by_http, by_system = _target(both, run, None, monitor), _target(both, run, login, None)

        async def read(target: Target) -> dict[str, monitoring.Reading]:
            async with httpx.AsyncClient() as http:
                try:
                    return {e: await monitoring.read(target, http, e, **o) for e, o in ENDPOINTS.items()}
                finally:
                    await monitoring.close(target)

        a, b = asyncio.run(read(by_http)), asyncio.run(read(by_system))
    finally:
        both.stop()
    assert a["healthz"].status == b["healthz"].status == 200
    assert a["varz"].doc and b["varz"].doc and a["varz"].doc["server_id"] == b["varz"].doc["server_id"]

    def consumers(r: monitoring.Reading) -> set[str]:
        assert r.doc is not None, r.error
        return {f"{s['name']}/{c['name']}" for acc in r.doc["account_details"] for s in acc["stream_detail"]
                for c in s.get("consumer_detail") or []}

    assert consumers(a["jsz"]) == consumers(b["jsz"]) and consumers(a["jsz"])
    connz = [r["connz"].doc for r in (a, b)]
    assert all(doc is not None and all("subscriptions_list_detail" in c or not c.get("subscriptions")
                                       for c in doc["connections"]) for doc in connz)


@pytest.mark.process
def test_doctor_names_an_open_monitoring_port_it_is_given(nats_server: Proc, tmp_path: Path) -> None:
    """Another deployment's HTTP monitoring answers anyone: a note on loopback, a warning under
    --strict (and a failure off loopback, as every posture probe)."""
    monitor = next(f"http://127.0.0.1:{p}" for p in _listening(nats_server) if p != nats_server.port)

    def posture(*flags: str) -> tuple[int, dict[str, Any]]:
        code, doc = cli_json("doctor", "--json", "--no-report", "--run-dir", str(tmp_path / "run"),
                             "--nats", nats_server.url, "--nats-monitor", monitor, *flags)
        return code, next(c for c in doc["checks"] if c["name"] == "posture nats monitoring")

    code, check = posture()
    assert check["status"] == "pass" and check["data"]["open"] is True, check
    assert "shows its users, subscriptions, streams and consumers without credentials" in check["details"][0]
    code, check = posture("--strict")
    assert code == 1 and check["status"] == "warn", check
    assert check["remedy"].startswith("manual step: open no HTTP monitoring port"), check
