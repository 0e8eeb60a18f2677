"""Doctor on a deployment of which nothing answers: each check says why at once.

nats-py retries a first connect for ever when told `max_reconnect_attempts=0`; doctor's
reconciliation connected that way and sat out its whole budget (13.5 s) on a NATS that
refused, then failed with no word of why. Every probe of NATS now connects once
(trade_ops.nats_connect).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import nats.errors
import pytest

from tests.helpers import cli_json
from trade_ops.nats_connect import connect_once

pytestmark = pytest.mark.process


def refused_port() -> int:
    """A port nothing listens on: bound by the OS, read back, closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_nats_is_an_error_at_once_not_a_retry_for_ever() -> None:
    async def attempt() -> None:
        # the bound only keeps a regression from hanging the suite: it is not what is asserted
        await asyncio.wait_for(connect_once(f"nats://127.0.0.1:{refused_port()}", name="t", timeout=1), 30)

    with pytest.raises(nats.errors.NoServersError):
        asyncio.run(attempt())


def test_the_reconciliation_of_a_deployment_that_refuses_is_skipped_with_why(tmp_path: Path) -> None:
    stack = tmp_path / "theirs.toml"
    stack.write_text(f"[infra.valkey]\nport = {refused_port()}\n\n[infra.nats]\nport = {refused_port()}\n\n"
                     f'[services.oms]\nurl = "http://127.0.0.1:{refused_port()}"\n')
    code, doc = cli_json("doctor", "--stack", str(stack), "--run-dir", str(tmp_path / "run"), "--json")
    assert code == 3  # nothing of the stack is reachable
    checks = {c["name"]: c for c in doc["checks"]}
    agree = checks["orders, fills, positions and lake agree"]
    assert agree["status"] == "skip", agree
    assert agree["summary"].startswith("skipped: ") and "connection refused" in agree["summary"], agree
    assert all(c["summary"] for c in doc["checks"] if c["status"] == "fail"), "a failure says why"
