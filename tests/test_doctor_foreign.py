"""Doctor on a deployment it did not build (tests/apps/foreign.py on a real nats-server and valkey).

Judged from that deployment's own evidence: its health bodies read whole, addresses in
its error texts, the NATS server's connections and a sample of the wire; never from
trade-ops' graph, streams or API rules. Every printed remedy runs in sh or is a manual step.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.helpers import Proc, start_nats, start_valkey
from tests.legacy_stack import start_foreign, stop_all
from tests.test_doctor_legacy import monitor_of
from trade_ops import infra
from trade_ops.cli import app
from trade_ops.doctor.check_services import UNHEALTHY_200

pytestmark = pytest.mark.process

FOREIGN = "is not a trade-ops service"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("foreign")
    nats, valkey = start_nats(tmp / "nats"), start_valkey(tmp / "valkey")
    procs: dict[str, Proc] = {}
    try:
        procs = start_foreign(tmp / "apps", nats.url, f"127.0.0.1:{valkey.port}")
        yield {"nats": nats, "valkey": valkey, "procs": procs, "tmp": tmp, "monitor": monitor_of(nats)}
    finally:
        stop_all(procs)
        valkey.stop()
        nats.stop()


def stack_file(world: dict[str, Any], path: Path) -> Path:
    """The operator's stack file for their deployment: where each part answers, nothing else."""
    monitor = int(world["monitor"].rsplit(":", 1)[1])
    lines = [f"[infra.valkey]\nport = {world['valkey'].port}\n",
             f"[infra.nats]\nport = {world['nats'].port}\nmonitor_port = {monitor}\n"]
    lines += [f'[services.{role}]\nurl = "{p.url}"\n' for role, p in world["procs"].items()]
    path.write_text("\n".join(lines))
    return path


def doctor(*args: str, cwd: Path | None = None) -> tuple[int, dict[str, Any]]:
    here = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        # --timeout 2: generous on a loaded machine; nothing here asserts a duration.
        result = CliRunner().invoke(app, ["doctor", "--json", "--timeout", "2", *args],
                                    catch_exceptions=False)
    finally:
        os.chdir(here)
    return result.exit_code, json.loads(result.stdout)


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=False)


def assert_remedies_run(doc: dict[str, Any]) -> list[str]:
    """Every remedy printed runs in sh with exit 0, or is worded as a manual step; none is a
    trade-ops stack command (trade-ops did not start this deployment)."""
    remedies = [c["remedy"] for c in doc["checks"] if c["status"] in ("fail", "warn") and c.get("remedy")]
    remedies += [c["remedy"] for c in doc["root_causes"] if c.get("remedy")]
    commands = list(dict.fromkeys(r.split(" first: ", 1)[-1] for r in remedies))
    assert commands
    for command in commands:
        assert "trade-ops up" not in command and "trade-ops logs" not in command, command
        if command.startswith("manual step: ") or "(manual step" in command:
            command = command.partition("; see: ")[2]  # a manual step may show what reproduces it
            if not command:
                continue
        assert command.startswith("curl -sS -m "), command  # anything that waits has a time limit
        done = sh(command)
        assert done.returncode == 0, (command, done.stderr)
    return commands


def test_a_foreign_stack_file_is_judged_by_its_own_evidence(world: dict[str, Any], tmp_path: Path) -> None:
    stack = stack_file(world, tmp_path / "theirs.toml")
    run_dir = tmp_path / "run"
    # --wire-window 10: the sample's upper bound, far above what it takes to settle on a loaded machine
    code, doc = doctor("--stack", str(stack), "--run-dir", str(run_dir), "--wire-window", "10", cwd=tmp_path)
    checks = by_name(doc)
    procs = world["procs"]
    assert code == 1
    assert doc["target"]["own"] == [] and sorted(doc["target"]["foreign"]) == sorted(procs)

    # Exactly what the file names: no builtin service at a default port, and nothing else reached.
    assert {c["name"] for c in doc["checks"] if c["group"] == "services"} == set(procs)
    given = {f"127.0.0.1:{p.port}" for p in procs.values()} | {
        f"127.0.0.1:{world['valkey'].port}", f"127.0.0.1:{world['nats'].port}",
        world["monitor"].removeprefix("http://")}
    assert set(doc["target"]["contacted"]) <= given, set(doc["target"]["contacted"]) - given

    # trade-ops' streams and API rules are not theirs: no TICKS failure, no /tickers failure.
    assert checks["nats"]["status"] == "pass" and not checks["nats"]["problems"]
    for name in ("ticks flowing", "gateway /tickers fresh", "gateway unknown symbol -> 404"):
        assert checks[name]["status"] == "skip" and FOREIGN in checks[name]["summary"], checks[name]
    assert checks["consumer lag"]["status"] == "skip"

    # Reconciliation runs on what this deployment shows (never "0 fills, 0 orders agree" from
    # trade-ops' EXEC stream): the OMS's own listing against the stream found keeping fills.
    agree = checks["orders, fills, positions and lake agree"]
    assert agree["status"] == "fail" and agree["component"] == "oms", agree
    assert agree["problems"][0].startswith("1 of 2 order(s) the OMS lists as FILLED have no fill in "
                                           "stream TRADES (trade.fill.>) (e.g. o-4)"), agree["problems"]
    assert "its GET /orders lists 5 order(s) (3 SENT, 2 FILLED), 1 fill(s) kept" in agree["problems"][0]
    assert agree["data"]["fill_sources"] == ["TRADES"] and agree["data"]["fills"] == 1
    assert "its own answer" in agree["rests_on"] and "trade-ops' model" not in agree["rests_on"]

    # A "healthy" body that says nats_connected: false is a warning, the field quoted.
    sink = checks["sink-ticks"]
    assert sink["status"] == "warn" and "nats_connected: false" in sink["problems"], sink
    assert sink["summary"] == "says 'healthy' while nats_connected: false"
    assert "mode: BATCH" in sink["details"]
    # Its /stats nests the count: 561 rows read, no "no rows written".
    rows = checks["sink-ticks rows"]
    assert rows["status"] == "pass" and rows["data"]["rows"] == 561, rows

    # `checks: {"l2_cache": false}` is hot-cache's own problem: no root cause named l2_cache.
    cache = checks["hot-cache"]
    assert cache["status"] == "fail" and cache["problems"][0] == UNHEALTHY_200
    assert cache["cause"] == "hot-cache" and cache["blocked_by"] == [] if "blocked_by" in cache else True
    causes = {c["name"]: c for c in doc["root_causes"]}
    assert "l2_cache" not in causes and "hot-cache" in causes
    assert causes["hot-cache"]["dependents"] == []  # no "dependents" from trade-ops' graph

    # The wire: a publisher nobody hears (found by its address: the connection is unnamed),
    # and a subscription whose filter never matches what flows.
    wire = checks["messaging wire sample"]
    assert wire["status"] == "pass"
    # Every filter here was judged early (matched, or missed enough related messages), the
    # consumers against what their stream holds: the sample ended before its window.
    assert wire["data"]["window_s"] < wire["data"]["wire_window_s"] == 10.0, wire
    assert wire["details"][0].startswith("ended before its 10 s window"), wire
    venue = checks["messaging route.binance.order"]
    assert venue["status"] == "fail" and venue["data"]["publishers"] == ["exeq"], venue
    assert venue["component"] == "exeq" and "wire sample" in venue["rests_on"]
    assert "no subscriber and no stream" in venue["problems"][0]
    assert "route.binance.order" in venue["remedy"] and "exeq" in venue["remedy"]
    ticks = checks["messaging feed.tick.BTCUSDT"]
    assert ticks["status"] == "fail" and ticks["data"]["publishers"] == ["gateway"], ticks
    sub = checks.get("subscription feed.tick.*.* (normalizer)")
    assert sub is not None, [(c["name"], c["summary"], c["details"]) for c in doc["checks"]
                             if c["group"] == "dataflow"]
    assert sub["status"] == "fail" and sub["component"] == "normalizer", sub
    assert "feed.tick.BTCUSDT" in sub["problems"][0] and "matched nothing" in sub["problems"][0]
    assert sub["remedy"].startswith("manual step: make normalizer subscribe feed.tick.>")
    # JetStream: a consumer whose filter matches nothing that flows into its stream, and one
    # whose messages pile up unacknowledged.
    writer = checks["consumer AUDIT/event-writer"]
    assert writer["status"] == "fail" and writer["component"] == "event-writer", writer
    assert "filters audit.*.*, which matched nothing" in writer["problems"][0]
    assert "audit.order flowed into AUDIT" in writer["problems"][0]
    archive = checks["consumer AUDIT/audit-archive"]
    assert archive["status"] == "warn" and archive["data"]["pending"] > 0, archive
    assert "messaging audit.order" not in checks  # a stream captures it: it is heard
    # No topology invented from trade-ops' contract (its normalizer publishes market.bar.>).
    assert not [c for c in doc["checks"] if c["name"].startswith("messaging market.bar")]
    assert checks["messaging topology"]["summary"].endswith("· 0 declared subject(s)")
    # Unnamed connections are matched by address, never warned about one by one.
    assert not any("no NATS connection named" in p for c in doc["checks"] for p in c["problems"])
    assert checks["messaging topology"]["status"] == "pass"

    # Admin endpoints open without credentials, from the OpenAPI: listed, not called.
    head = checks["posture admin endpoints"]
    assert head["summary"] == "2 OpenAPI document(s) read · 3 open admin endpoint(s)", head
    assert "posture gateway endpoints" not in checks  # no OpenAPI there: said once, in the first row
    risk = checks["posture risk endpoints"]
    assert risk["status"] == "pass" and risk["data"]["open_endpoints"] == ["POST /risk/symbol/{symbol}/block"]
    venue_posture = checks["posture live-gateway endpoints"]
    assert venue_posture["data"]["open_endpoints"] == ["POST /panic", "PUT /mode"]  # /flatten has security
    assert "--strict warns" in venue_posture["details"][0]

    assert_remedies_run(doc)
    # --json writes the JSON and nothing else: no STATUS_REPORT.md here or in the run directory.
    assert not (tmp_path / "reports").exists() and not (run_dir / "reports").exists()


def test_strict_turns_every_loopback_note_into_a_warning(world: dict[str, Any], tmp_path: Path) -> None:
    procs = world["procs"]
    code, doc = doctor("--strict", "--url", f"risk={procs['risk'].url}", "--url",
                       f"live-gateway={procs['live-gateway'].url}", "--run-dir", str(tmp_path / "run"))
    checks = by_name(doc)
    assert code == 1 and doc["status"] == "fail"
    for name in ("posture risk endpoints", "posture live-gateway endpoints"):
        assert checks[name]["status"] == "warn" and "--strict" in checks[name]["problems"][0]
        assert checks[name]["remedy"].startswith("manual step: require credentials on ")


def test_orders_held_and_no_fills_to_compare_is_not_a_pass(world: dict[str, Any], tmp_path: Path) -> None:
    """It passed "0 fills, 0 orders agree" while the OMS held hundreds of unfilled orders."""
    code, doc = doctor("--url", f"oms={world['procs']['oms'].url}", "--run-dir", str(tmp_path / "run"))
    agree = by_name(doc)["orders, fills, positions and lake agree"]
    assert agree["status"] == "warn" and code == 0, agree
    assert agree["problems"][0].startswith("its GET /orders lists 5 order(s) (3 SENT, 2 FILLED), and doctor "
                                           "found no fills to reconcile them against (no NATS is examined")
    assert "[contracts.fills]" in agree["remedy"] and agree["remedy"].startswith("manual step: ")


def test_a_declared_fills_stream_is_the_one_compared(world: dict[str, Any], tmp_path: Path) -> None:
    stack = stack_file(world, tmp_path / "theirs.toml")
    with stack.open("a") as out:
        out.write('\n[contracts.fills]\nstream = "AUDIT"\nsubject = "audit.>"\n')
    code, doc = doctor("--stack", str(stack), "--run-dir", str(tmp_path / "run"), "--wire-window", "0")
    agree = by_name(doc)["orders, fills, positions and lake agree"]
    # AUDIT keeps the OMS's audit records, none naming an order: both FILLED orders lack a fill.
    assert agree["data"]["fill_sources"] == ["AUDIT"] and "stack file" in agree["rests_on"], agree
    assert code == 1 and agree["status"] == "fail" and agree["problems"][0].startswith(
        "2 of 2 order(s) the OMS lists as FILLED have no fill in stream AUDIT (audit.>) (e.g. o-3, o-4)")


def test_the_lake_tables_that_keep_fills_are_compared(world: dict[str, Any], tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    lake = tmp_path / "lake"
    write_deltalake(str(lake / "venue_fills"), pa.table({"fill_id": ["x-1", "x-2"],
                                                         "order_id": ["o-3", "o-4"]}))
    write_deltalake(str(lake / "executions"), pa.table({"exec": ["e-1"], "oid": ["o-3"]}))
    oms = world["procs"]["oms"].url
    # Found by its name: both FILLED orders have their fill.
    code, doc = doctor("--url", f"oms={oms}", "--lake", str(lake), "--run-dir", str(tmp_path / "run"))
    agree = by_name(doc)["orders, fills, positions and lake agree"]
    assert agree["status"] == "pass" and agree["data"]["fill_sources"] == ["venue_fills"], agree
    assert agree["summary"] == "2 FILLED order(s) of 5 listed agree with 2 fill(s) in table venue_fills"
    # Declared, with the field naming the order: o-4's fill is not there (a table is written in
    # batches: a warning, not a failure).
    stack = tmp_path / "fills.toml"
    stack.write_text('[contracts.fills]\ntable = "executions"\norder_id = "oid"\n')
    code, doc = doctor("--stack", str(stack), "--url", f"oms={oms}", "--lake", str(lake),
                       "--run-dir", str(tmp_path / "run"))
    agree = by_name(doc)["orders, fills, positions and lake agree"]
    assert agree["status"] == "warn" and code == 0, agree
    assert agree["problems"][0].startswith("1 of 2 order(s) the OMS lists as FILLED have no fill in table "
                                           "executions (e.g. o-4)")
    assert "stack file" in agree["rests_on"]


def test_the_reconciliation_skip_is_said_in_every_output(world: dict[str, Any], tmp_path: Path) -> None:
    report = tmp_path / "STATUS.md"
    # The gateway lists no orders: there is nothing of an OMS's to reconcile against.
    result = CliRunner().invoke(app, ["doctor", "--timeout", "2", "--report", str(report), "--run-dir",
                                      str(tmp_path / "run"), "--url", f"oms={world['procs']['gateway'].url}"],
                                catch_exceptions=False)
    why = "skipped: the OMS's GET /orders answered HTTP 404: there is nothing of the OMS's to reconcile"
    assert why in " ".join(result.output.split()), result.output
    assert why in report.read_text()
    assert "| judged by their own evidence | oms |" in report.read_text()
    _, doc = doctor("--url", f"oms={world['procs']['gateway'].url}", "--run-dir", str(tmp_path / "run"))
    assert by_name(doc)["orders, fills, positions and lake agree"]["summary"].startswith(why)


def test_an_s3_lake_is_among_the_addresses_contacted(world: dict[str, Any], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    closed = infra.free_port()
    for key, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}", "AWS_ALLOW_HTTP": "true",
                       "AWS_ACCESS_KEY_ID": "doctor", "AWS_SECRET_ACCESS_KEY": "doctor",
                       "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    code, doc = doctor("--url", f"ptrc={world['procs']['ptrc'].url}", "--lake", "s3://bucket/lake",
                       "--run-dir", str(tmp_path / "run"))
    assert code == 1 and by_name(doc)["lake"]["status"] == "fail"
    assert f"127.0.0.1:{closed}" in doc["target"]["contacted"]


def test_a_service_whose_openapi_says_it_is_trade_ops_own_is_judged_as_such(tmp_path: Path) -> None:
    from tests.legacy_stack import _start

    proc = _start("own-openapi", tmp_path, None, "foreign")
    try:
        code, doc = doctor("--url", f"gateway={proc.url}", "--run-dir", str(tmp_path / "run"))
    finally:
        proc.stop()
    checks = by_name(doc)
    assert code == 1 and doc["target"]["own"] == ["gateway"] and doc["target"]["foreign"] == []
    # trade-ops' API rules apply to its own gateway: it serves no /tickers.
    tickers = checks["gateway /tickers fresh"]
    assert tickers["status"] == "fail" and "trade-ops' model" in tickers["rests_on"], tickers


def test_the_wire_sample_is_skipped_with_why_where_doctor_may_not_subscribe(world: dict[str, Any],
                                                                            tmp_path: Path) -> None:
    config = tmp_path / "auth.conf"
    config.write_text('authorization { user: "theirs", password: "secret" }\n')
    nats = start_nats(tmp_path / "nats", config=config)
    try:
        code, doc = doctor("--url", f"gateway={world['procs']['gateway'].url}", "--nats", nats.url,
                           "--nats-monitor", monitor_of(nats), "--run-dir", str(tmp_path / "run"))
    finally:
        nats.stop()
    wire = by_name(doc)["messaging wire sample"]
    assert code == 0, [c for c in doc["checks"] if c["status"] != "pass"]  # a skip fails nothing
    assert wire["status"] == "skip" and wire["summary"].startswith("skipped: doctor cannot connect to NATS")
    assert "uthorization" in wire["summary"], wire  # the server's own words


def test_causes_come_from_evidence_never_from_trade_ops_graph(world: dict[str, Any], tmp_path: Path) -> None:
    """Last: it stops ptrc and valkey. pnl (which uses no ptrc) names the valkey it was given,
    by IP and port, in redis-py's words."""
    procs, valkey = world["procs"], world["valkey"]
    procs["ptrc"].stop()
    valkey.stop()
    given = f"127.0.0.1:{valkey.port}"
    code, doc = doctor("--stack", str(stack_file(world, tmp_path / "theirs.toml")), "--run-dir",
                       str(tmp_path / "run"), "--wire-window", "0")
    checks = by_name(doc)
    assert code == 1
    pnl = checks["pnl"]
    assert pnl["status"] == "fail" and f"Error 111 connecting to {given}" in pnl["problems"][0]
    # trade-ops' graph says pnl depends on ptrc, nats, lake, gateway; this pnl's evidence says valkey.
    assert pnl["cause"] == "valkey" and pnl["blocked_by"] == ["valkey"], pnl
    assert pnl["rests_on"] == ["error text"]
    causes = {c["name"]: c for c in doc["root_causes"]}
    # (oms: its listing says o-4 FILLED and no fill of it is kept, the reconciliation's finding)
    assert set(causes) == {"valkey", "ptrc", "hot-cache", "oms"}, list(causes)
    assert causes["oms"]["checks"] == ["orders, fills, positions and lake agree"], causes["oms"]
    assert causes["ptrc"]["blocks"] == [] and causes["valkey"]["blocks"] == ["pnl"]
    assert causes["valkey"]["dependents"] == ["pnl"]  # who named it, not trade-ops' dependents
    assert "127" not in causes
    assert checks["messaging wire sample"]["status"] == "skip"
    assert checks["messaging wire sample"]["summary"] == "skipped: --wire-window 0"
    assert_remedies_run(doc)

    # Without --valkey the same address is an external dependency named by host and port.
    code, doc = doctor("--url", f"pnl={procs['pnl'].url}", "--run-dir", str(tmp_path / "run"))
    causes = {c["name"]: c for c in doc["root_causes"]}
    assert code == 1 and list(causes) == [given], list(causes)
    assert causes[given]["kind"] == "external" and causes[given]["remedy"].startswith("manual step: ")
