"""The tool knows whom it talks to (issue 25): with the OMS killed and another program bound
to its port, `trade-ops doctor` and `bench oms -n 3` sent the operator token to it 241
times (doctor showed "oms ✓", bench PASS on its 200s), and `up` called a port another
program took "ready in 0.01s". Each process trade-ops starts now answers the instance id
`up` gave it on /livez; the token goes only to a service that gives it back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps.stacks import ROOT, free_stack
from tests.helpers import CLEAN_ENV, cli_json, wait_until
from trade_ops import identity, infra, readiness
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import Stack

pytestmark = [pytest.mark.process, pytest.mark.timeout(240)]


class Impostor:
    """tests/apps/impostor.py on `port`: it answers everything 200 and logs what it is sent."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.log = port, workdir / f"impostor-{port}.auth"
        self.log.write_bytes(b"")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.apps.impostor:app", "--app-dir", str(ROOT),
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env={**os.environ, "IMPOSTOR_LOG": str(self.log)}, start_new_session=True)
        assert wait_until(lambda: readiness.http_status(f"http://127.0.0.1:{port}/livez") == 200, 15)

    def tokens(self) -> list[bytes]:
        return [line for line in self.log.read_bytes().splitlines() if line]

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGTERM)
        self.popen.wait(10)


def test_a_port_held_by_another_program_is_never_ready(tmp_path: Path) -> None:
    """`up` waits for the id it gave: an impostor answering 200 on /livez and /health is
    not ready, and the reason names it with its pid."""
    oms = free_stack()["oms"]
    impostor = Impostor(oms.port or 0, tmp_path)
    try:
        outcome = readiness.wait_ready(oms, lambda: None, time.monotonic() + 1.0, instance="the-id-up-gave")
    finally:
        impostor.stop()
    assert not outcome.ready
    assert "not the process trade-ops started" in (outcome.reason or "")
    assert f"pid {impostor.popen.pid}" in (outcome.reason or ""), outcome.reason


@pytest.fixture(scope="module")
def oms_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunDir, Stack]]:
    """The OMS and what it needs (valkey, nats, risk, gateway), as `up --only oms` starts them."""
    rd, stack = RunDir(tmp_path_factory.mktemp("impostor") / "run"), free_stack()
    try:
        supervisor.up(rd, stack, only=["oms"], timeout=90)
        yield rd, stack
    finally:
        supervisor.down(rd, grace=2)


def _cli(*args: str) -> tuple[int, dict[str, Any]]:
    return cli_json(*args, env=CLEAN_ENV)


def test_no_token_reaches_an_impostor_on_the_oms_port(oms_stack: tuple[RunDir, Stack],
                                                     tmp_path: Path) -> None:
    rd, stack = oms_stack
    oms = stack["oms"]
    live = json.loads(readiness._opener.open(oms.base_url + "/livez", timeout=2).read())
    assert live["instance"] == identity.expected(rd.path, "oms")  # the id `up` gave, answered
    assert identity.operator_headers_for(rd.path, oms)  # the real OMS proves itself: the token goes

    pid = rd.load_state().processes["oms"].pid
    os.kill(pid, signal.SIGKILL)  # the OMS dies; another program takes its port
    assert wait_until(lambda: not infra.port_in_use(oms.port or 0), 10)
    impostor = Impostor(oms.port or 0, tmp_path)
    try:
        code, bench = _cli("bench", "oms", "-n", "3", "--json", "--run-dir", str(rd.path))
        assert code == 3 and "impostor" in bench["message"], bench
        assert f"pid {impostor.popen.pid}" in bench["message"], bench
        code, doctor = _cli("doctor", "--json", "--no-report", "--run-dir", str(rd.path))
        [check] = [c for c in doctor["checks"] if c["name"] == "oms"]
        assert check["status"] == "fail" and check["summary"] == "impostor", check
        assert f"pid {impostor.popen.pid}" in check["data"]["impostor"], check
        code, chaos = _cli("chaos", "--fault", "burst 3", "--json", "--run-dir", str(rd.path))
        assert code == 3 and "impostor" in chaos["message"], chaos
        assert impostor.tokens() == []  # not once
    finally:
        impostor.stop()
