"""The same care on trade-ops' own stack: a crashed child fails its check, one fix per problem,
--strict judges the current process and data, --watch reports the stack's changes only."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec
import pytest

from trade_ops.context import Context
from trade_ops.doctor.check_infra import EXPECTED_TABLES, SPARSE_WRITERS, check_lake
from trade_ops.doctor.check_processes import check_process
from trade_ops.doctor.model import CheckResult, DoctorReport
from trade_ops.doctor.reconcile import check_reconcile
from trade_ops.doctor.rootcause import assign
from trade_ops.doctor.target import Process, build_target
from trade_ops.stack import load_stack

pytestmark = pytest.mark.process

# Python imports sitecustomize at start: this one aborts the reconciliation child natively
# (SIGABRT), as "terminate called without an active exception" did in native code.
_ABORT_RECONCILE = """\
import os
if b"trade_ops.doctor.reconcile" in open("/proc/self/cmdline", "rb").read():
    os.abort()
"""


def test_a_reconciliation_child_that_crashes_fails_its_check(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_ABORT_RECONCILE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    target = build_target(Context.resolve(tmp_path / "run"))
    r = CheckResult("orders, fills, positions and lake agree", "dataflow", component="event-writer")
    asyncio.run(check_reconcile(target, r, 100, 20.0))
    assert r.status == "fail", r  # was a warn: exit 0 while nothing was compared
    assert "the reconciliation crashed (killed by SIGABRT)" in r.problems[0]


def _process(name: str, log: Path, started_ago: float, restarts: int = 0) -> Process:
    return Process(name, "service", os.getpid(), None, "running", True, restarts, log,
                   time.time() - started_ago)


@pytest.mark.parametrize(("started_ago", "status"), [(3600.0, "pass"), (5.0, "warn")])
def test_strict_judges_the_current_process_not_its_restarts(tmp_path: Path, started_ago: float,
                                                            status: str) -> None:
    """After a restart drill --strict failed for good on "restarted 2 times"."""
    log = tmp_path / "oms.log"
    log.write_text("")
    r = CheckResult("process oms", "processes", component="oms")
    target = build_target(Context.resolve(tmp_path / "run"))
    check_process(target, _process("oms", log, started_ago, restarts=2), r)
    assert r.status == status, r
    assert any(d.startswith("restarted 2 times") for d in r.details)


@pytest.mark.parametrize(("started_ago", "status"), [(2.0, "pass"), (600.0, "warn")])
def test_strict_right_after_up_tables_not_written_by_writers_just_started(tmp_path: Path, started_ago: float,
                                                                          status: str) -> None:
    """Right after `up`, --strict failed on "tables not written yet": writers started 2 s ago."""
    target = build_target(Context.resolve(tmp_path / "run"))
    writers = sorted({w for w in EXPECTED_TABLES.values() if w not in SPARSE_WRITERS})
    target.services = [c for c in target.services if c.name in writers]
    target.processes = {w: _process(w, tmp_path / f"{w}.log", started_ago) for w in writers}
    target.lake_uri = str(tmp_path / "lake")  # empty: nothing written yet
    lake = next(c for c in target.stack.infra if c.kind == "lake")
    r = CheckResult("lake", "infrastructure", component="lake")
    asyncio.run(check_lake(target, lake, r))
    assert r.status == status, r
    assert any("tables not written yet" in d for d in r.details)


def test_a_suspended_valkey_gets_one_fix() -> None:
    """It got two: `kill -CONT PID` (right) and `trade-ops up --only valkey` (waits 30 s, exit 3)."""
    process = CheckResult("process valkey", "processes", component="valkey")
    process.fail("process valkey is suspended (SIGSTOP): it answers nothing", "kill -CONT 4242")
    ping = CheckResult("valkey", "infrastructure", component="valkey")
    ping.fail("PING: no answer within 1.0s", "trade-ops up --only valkey")
    oms = CheckResult("oms", "services", component="oms")
    oms.fail("unhealthy: valkey:ping fail")
    causes = assign([process, ping, oms], load_stack(None))
    assert {r.remedy for r in (process, ping)} == {"kill -CONT 4242"}
    assert oms.remedy == "fix valkey first: kill -CONT 4242"
    assert [c.remedy for c in causes if c.name == "valkey"] == ["kill -CONT 4242"]


def test_watch_reports_the_stack_not_its_own_throttled_trade() -> None:
    from trade_ops.commands.doctor import last_trade_stands
    from trade_ops.doctor.render import changes

    def doc(trip: str, oms: str) -> DoctorReport:
        return msgspec.convert({
            "tool": "trade-ops doctor", "status": "pass", "exit_code": 0, "strict": False, "reachable": True,
            "started_at": "", "duration_ms": 0.0, "summary": {}, "root_causes": [], "environment": {},
            "target": {"stack": "builtin", "offset": 0, "run_dir": "."}, "bench": None,
            "checks": [{"name": "oms order round trip", "group": "functional", "status": trip},
                       {"name": "oms", "group": "services", "status": oms}]}, DoctorReport)

    traded = doc("pass", "pass")
    throttled = doc("skip", "pass")  # the next cycle, read-only: the round trip skipped
    assert changes(traded, last_trade_stands(throttled, traded)) == []
    moved = doc("skip", "fail")  # the stack did change: that is reported
    assert changes(traded, last_trade_stands(moved, traded)) == ["oms: pass -> fail"]


@pytest.mark.parametrize("started", [True, False])
def test_strict_on_its_own_loopback_oms_is_no_warning(tmp_path: Path, started: bool) -> None:
    """`doctor --strict` on trade-ops' own healthy stack warned "oms answers without credentials":
    its OMS on loopback scopes orders by the account the caller names, by design, and has no
    admin endpoint. Another OMS open on loopback still warns under --strict."""
    from tests.apps.foreign_oms import start_foreign_oms
    from trade_ops.doctor.check_posture import OWN_OMS_ON_LOOPBACK, posture_checks

    oms = start_foreign_oms(tmp_path)  # a real process answering GET /orders 200 without a token
    try:
        target = build_target(Context.resolve(tmp_path / "run"), urls={"oms": oms.url})
        if started:
            target.processes = {"oms": _process("oms", tmp_path / "oms.log", 3600.0)}

        async def probe() -> CheckResult:
            import httpx

            async with httpx.AsyncClient() as http:
                r, check = next((r, fn) for r, fn in posture_checks(target, http, strict=True)
                                if r.name == "posture oms")
                await check()
                return r

        r = asyncio.run(probe())
    finally:
        oms.stop()
    if started:
        assert r.status == "pass" and r.data["by_design"] and OWN_OMS_ON_LOOPBACK in r.details[0], r
    else:
        assert r.status == "warn" and "--strict" in r.problems[0], r
