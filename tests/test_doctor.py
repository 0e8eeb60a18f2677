"""Doctor without processes: health shapes, root causes, the Rich view, STATUS_REPORT.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from rich.console import Console
from typer.testing import CliRunner

from trade_ops.cli import app
from trade_ops.context import Context
from trade_ops.doctor import render_status_report
from trade_ops.doctor.check_config import config_results
from trade_ops.doctor.check_dataflow import sink_progress
from trade_ops.doctor.check_services import UNHEALTHY_200, judge_health
from trade_ops.doctor.model import CheckResult, DoctorReport, summarize
from trade_ops.doctor.render import changes, render
from trade_ops.doctor.rootcause import assign
from trade_ops.doctor.round_trip import position_of
from trade_ops.doctor.target import build_target, parse_urls
from trade_ops.errors import UsageError
from trade_ops.stack import load_stack

pytestmark = pytest.mark.unit


# -- health shapes ------------------------------------------------------------------------
def test_health_json_pass_and_failing_dependency() -> None:
    assert judge_health(200, {"status": "pass", "version": "1.2", "checks": {}}).status == "pass"
    verdict = judge_health(503, {"status": "fail", "checks": {
        "valkey:responseTime": [{"status": "fail", "output": "Connection refused"}],
        "nats:responseTime": [{"status": "pass"}]}})
    assert verdict.status == "fail" and verdict.failing == ["valkey"]
    assert any("Connection refused" in d for d in verdict.details)


@pytest.mark.parametrize("word", ["healthy", "ok", "OK"])
def test_legacy_healthy_shapes_pass(word: str) -> None:
    verdict = judge_health(200, {"status": word})
    assert verdict.status == "pass" and verdict.shape == "legacy"


def test_http_200_with_an_unhealthy_body_is_called_that() -> None:
    verdict = judge_health(200, {"status": "unhealthy"})
    assert verdict.status == "fail" and verdict.details[0] == UNHEALTHY_200
    assert judge_health(200, {"status": "fail"}).details[0] == UNHEALTHY_200
    assert judge_health(503, {"status": "unhealthy"}).status == "fail"


# -- root causes ----------------------------------------------------------------------------
def _r(name: str, group: Any, status: Any, component: str | None = None, **kw: Any) -> CheckResult:
    r = CheckResult(name, group, component=component or name, **kw)
    if status == "fail":
        r.fail(f"{name} is broken", f"trade-ops up --only {component or name}")
    return r


def test_valkey_down_is_one_root_cause_blocking_its_dependents() -> None:
    stack = load_stack()
    results = [
        _r("valkey", "infrastructure", "fail"), _r("nats", "infrastructure", "pass"),
        _r("risk", "services", "fail"), _r("oms", "services", "fail"), _r("ptrc", "services", "fail"),
        _r("gateway", "services", "pass"), _r("exeq", "services", "pass"),
        _r("risk approves a small order", "functional", "fail", component="risk"),
        _r("oms order round trip", "functional", "fail", component="oms",
           needs=("risk", "exeq", "live-gateway", "gateway")),
    ]
    causes = assign(results, stack)
    assert [c.name for c in causes] == ["valkey"]
    assert set(causes[0].blocks) == {"risk", "oms", "ptrc"}
    assert causes[0].remedy == "trade-ops up --only valkey"
    by_name = {r.name: r for r in results}
    assert all(r.cause == "valkey" for r in results if r.status == "fail")
    assert by_name["oms"].blocked_by == ["valkey"]
    assert by_name["oms"].remedy == "fix valkey first: trade-ops up --only valkey"
    assert by_name["gateway"].cause is None


def test_a_failure_with_healthy_dependencies_is_its_own_cause() -> None:
    results = [_r("valkey", "infrastructure", "pass"), _r("risk", "services", "pass"),
               _r("risk approves a small order", "functional", "fail", component="risk")]
    causes = assign(results, load_stack())
    assert [c.name for c in causes] == ["risk"] and causes[0].blocks == []
    assert results[2].cause == "risk" and results[2].blocked_by == []


def test_dependency_named_by_health_body_counts_as_an_edge() -> None:
    # exeq's stack entry does not list valkey, but its /health says valkey fails.
    exeq = _r("exeq", "services", "fail")
    exeq.data["blocked_by"] = ["valkey"]
    causes = assign([_r("valkey", "infrastructure", "fail"), exeq], load_stack())
    assert [c.name for c in causes] == ["valkey"] and exeq.cause == "valkey"


def test_a_failing_part_of_the_service_itself_names_no_external_dependency() -> None:
    # event-writer's own consumer check timed out (seen after a NATS stop): a part of the
    # service (componentType "component"), not an external "consumer" to make reachable.
    # Its valkey check (a datastore) and a legacy body's questdb still name dependencies.
    from services.kit.health import Check, health_document
    from trade_ops.doctor import evidence

    doc = health_document("event-writer", "1", [
        Check("consumer/event-writer-exec", "responseTime", "fail", "component",
              output="timed out after 0.50s"),
        Check("valkey", "responseTime", "fail", "datastore", output="refused"),
    ])
    names = load_stack().components
    verdict = judge_health(503, doc)
    named = evidence.from_checks(verdict.failing_checks, names, own=verdict.own_parts)
    assert [(n.name, n.external) for n in named] == [("valkey", False)]
    # A check key that is neither an address nor a component names nothing: no "questdb"
    # (or "l2_cache") root cause from a word; its address in an error text would name it.
    legacy = judge_health(503, {"status": "unhealthy", "checks": {"questdb": "down", "redis": True}})
    assert evidence.from_checks(legacy.failing_checks, names, own=legacy.own_parts) == []
    # The OMS's `risk` check is its own component, and still about risk.
    oms = judge_health(503, health_document("oms", "1", [Check("risk", "responseTime", "fail", "component")]))
    named = evidence.from_checks(oms.failing_checks, names, own=oms.own_parts)
    assert [n.name for n in named] == ["risk"]


# -- documents: the Rich view and STATUS_REPORT.md ------------------------------------------
def _doc() -> DoctorReport:
    checks = [
        {"name": "valkey", "group": "infrastructure", "status": "fail", "component": "valkey",
         "summary": "unreachable", "duration_ms": 2.0, "details": ["no PING answer at 127.0.0.1:6379"],
         "problems": ["no PING answer at 127.0.0.1:6379"], "cause": "valkey",
         "remedy": "trade-ops up --only valkey"},
        {"name": "nats", "group": "infrastructure", "status": "pass", "component": "nats",
         "summary": "2.10.0", "duration_ms": 3.0, "details": ["JetStream enabled"], "problems": [],
         "cause": None, "remedy": None, "data": {"version": "2.10.0"}},
        {"name": "oms", "group": "services", "status": "fail", "component": "oms", "summary": "",
         "duration_ms": 5.0, "details": ["valkey:responseTime: refused"], "problems": [], "cause": "valkey",
         "blocked_by": ["valkey"], "remedy": "fix valkey first: trade-ops up --only valkey",
         "data": {"url": "http://127.0.0.1:8099", "http_status": 503, "latency_ms": 4.2}},
        {"name": "gateway", "group": "services", "status": "pass", "component": "gateway",
         "summary": "0.1.0 · 3 ms", "duration_ms": 3.0, "details": [], "problems": [], "cause": None,
         "remedy": None, "data": {"port": 8080, "latency_ms": 3.1, "version": "0.1.0"}},
        {"name": "process risk", "group": "processes", "status": "fail", "component": "risk",
         "summary": "dead (pid 42)", "duration_ms": 1.0, "details": ["process risk is dead (pid 42)"],
         "problems": ["process risk is dead (pid 42)"], "cause": "risk",
         "remedy": "trade-ops up --only risk; see trade-ops logs risk",
         "log_tail": ["Traceback (most recent call last):", "KeyError: 'limits'"]},
        {"name": "sink-ticks rows", "group": "dataflow", "status": "warn", "component": "sink-ticks",
         "summary": "", "duration_ms": 300.0, "details": ["no rows written in 0.3s"],
         "problems": ["no rows written in 0.3s"], "cause": "sink-ticks",
         "remedy": "trade-ops logs sink-ticks"},
        {"name": "gateway /tickers fresh", "group": "functional", "status": "pass", "component": "gateway",
         "summary": "3 symbols", "duration_ms": 4.0, "details": [], "problems": [], "cause": None,
         "remedy": None},
    ]
    typed = msgspec.convert(checks, list[CheckResult])
    return msgspec.convert({
            "tool": "trade-ops doctor", "strict": False,
            "status": "fail", "exit_code": 1, "reachable": True, "started_at": "2025-01-02T03:04:05Z",
            "duration_ms": 812.0, "summary": msgspec.to_builtins(summarize(typed)), "checks": checks,
            "root_causes": [{"name": "valkey", "reason": "no PING answer at 127.0.0.1:6379",
                             "blocks": ["oms"], "checks": ["valkey", "oms"],
                             "remedy": "trade-ops up --only valkey", "dependents": ["oms"]},
                            {"name": "risk", "reason": "process risk is dead (pid 42)", "blocks": [],
                             "checks": ["process risk"], "remedy": "trade-ops up --only risk"}],
            "target": {"stack": "builtin", "run_dir": "/tmp/x", "offset": 0},
            "environment": {"python": "3.12.1", "git_revision": "abc1234", "host": "box"},
            "bench": {"name": "baseline", "path": "reports/runs/baseline.json", "saved_at": "2025-01-01",
                      "latency_ms": {"p50": 3.1, "p99": 9.8}, "passed": False,
                      "slo": [{"expr": "p99<5ms", "passed": False, "observed": "9.8 ms"}]}}, DoctorReport)


def test_rich_view_shows_marks_details_fixes_summary_and_verdict() -> None:
    console = Console(record=True, width=140, color_system=None)
    render(_doc(), console)
    text = console.export_text()
    assert "[✗] valkey  unreachable" in text
    assert "[✓] nats" in text
    assert "→ trade-ops up --only valkey" in text
    assert "[✗] oms  blocked by valkey" in text
    assert "│ KeyError: 'limits'" in text  # the dead process's log tail
    assert "[!] sink-ticks rows" in text
    assert "Infrastructure 1/2 · Services 1/2 · Functional 1/1 · Data flow 0/1 · Processes 0/1" in text
    assert "Root causes" in text and "blocks oms" in text
    assert text.rstrip().splitlines()[-1].startswith("FAIL")


def test_rich_view_passes_with_warnings() -> None:
    doc = _doc()
    checks = [c for c in doc.checks if c.status != "fail"]
    doc = msgspec.structs.replace(doc, checks=checks, status="warn", exit_code=0, root_causes=[],
                                  summary=summarize(checks))
    console = Console(record=True, width=140, color_system=None)
    render(doc, console)
    assert console.export_text().rstrip().splitlines()[-1].startswith("PASS (1 warning)")


def test_status_report_reads_well_as_markdown() -> None:
    md = render_status_report(_doc())
    assert md.startswith("# Status report\n")
    assert "**Gate: FAIL**" in md
    for heading in ("## Summary", "## Infrastructure", "## Services", "## Functional tests", "## Data flow",
                    "## Processes and logs", "## Latest benchmark", "## Issues found", "## Environment"):
        assert heading in md
    # the address probed, its own answer (HTTP 503, its failing check) beside what blocks it
    assert ("| ❌ oms | http://127.0.0.1:8099 | 4.2 ms | 503 | — | blocked by valkey; "
            "valkey:responseTime: refused | valkey |") in md
    assert "| `p99<5ms` | 9.8 ms | ❌ |" in md
    assert "**Fix:** `trade-ops up --only valkey`" in md
    assert "| git_revision | abc1234 |" in md
    assert "2025-01-02T03:04:05Z" in md
    # every table row has as many cells as its header
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---") or line.startswith("| ---"):
            width = lines[i - 1].count(" | ")
            j = i + 1
            while j < len(lines) and lines[j].startswith("| "):
                assert lines[j].replace("\\|", "").count(" | ") == width, lines[j]
                j += 1


def test_status_report_without_bench_or_issues() -> None:
    doc = _doc()
    checks = [c for c in doc.checks if c.status == "pass"]
    doc = msgspec.structs.replace(doc, checks=checks, status="pass", exit_code=0, root_causes=[], bench=None,
                                  summary=summarize(checks))
    md = render_status_report(doc)
    assert "**Gate: PASS**" in md and "None: every check passed." in md
    assert "No saved bench run" in md


def test_changes_between_runs() -> None:
    before, after = _doc(), _doc()
    after.checks[0].status = "pass"
    assert changes(before, after) == ["valkey: fail -> pass"]
    assert changes(None, after) == []


# -- small parsers --------------------------------------------------------------------------
def test_sink_stats_shape() -> None:
    stats = {"rows_written": 40, "last_write": "2025-01-01T00:00:00+00:00",
             "sinks": {"a": {"rows_written": 20, "write_errors": 2, "last_error": "disk full"},
                       "b": {"rows_written": 20, "write_errors": 0, "last_error": None}}}
    rows, last, errors, last_error = sink_progress(stats)
    assert (rows, errors, last_error) == (40, 2, "disk full") and last == 1735689600.0


def test_position_of_several_shapes() -> None:
    assert position_of({"positions": [{"symbol": "BTCUSDT", "quantity": 0.5}]}, "BTCUSDT") == 0.5
    assert position_of({"BTCUSDT": {"net_quantity": -1}}, "BTCUSDT") == -1
    assert position_of([], "BTCUSDT") is None


def test_log_errors_count_from_the_current_process_only() -> None:
    from trade_ops.doctor.check_processes import scan_log

    log = ("INFO:     Started server process [11]\nERROR boom in the first process\n"
           "Traceback (most recent call last):\n"
           "INFO:     Started server process [22]\nINFO:     Application startup complete.\n")
    assert scan_log(log, 22) == (0, 0, None)
    assert scan_log(log, 11)[:2] == (1, 1)
    nats = "[11] [ERR] old failure\n[22] 2026/01/01 [INF] Starting nats-server\n[22] [ERR] new failure\n"
    assert scan_log(nats, 22) == (1, 0, "[22] [ERR] new failure")
    valkey = "11:C * oO0OoO0OoO0Oo Valkey is starting, pid=11, just started\n# ERROR old\n" \
             "22:C * Valkey version=8.0, bits=64, pid=22, just started\n22:M * Ready to accept connections\n"
    assert scan_log(valkey, 22) == (0, 0, None)


def test_remedies_follow_how_each_service_is_run(tmp_path: Path) -> None:
    stack = tmp_path / "stack.toml"
    stack.write_text('[services.oms]\nurl = "http://10.1.2.3:8099"\ncompose_file = "ops/compose.yml"\n'
                     'compose_service = "oms-svc"\n[services.risk]\nurl = "http://10.1.2.3:8103"\n'
                     'container = "legacy-risk"\n[services.pnl]\nurl = "http://10.1.2.3:8100"\n')
    target = build_target(Context.resolve(tmp_path / "run", stack))
    assert target.up_remedy("oms") == "docker compose -f ops/compose.yml up -d oms-svc"
    assert target.logs_remedy("oms") == "docker compose -f ops/compose.yml logs --tail 50 oms-svc"
    assert target.up_remedy("risk") == "docker start legacy-risk"
    assert target.logs_remedy("risk") == "docker logs --tail 50 legacy-risk"
    assert target.logs_remedy("pnl") == "curl -sS -m 3 http://10.1.2.3:8100/health"
    # the builtin stack that trade-ops would start here: its own commands, with the run dir
    local = build_target(Context.resolve(tmp_path / "run"))
    assert local.up_remedy("valkey") == f"trade-ops up --only valkey --run-dir {tmp_path / 'run'}"


def test_explicit_targets_hold_exactly_what_was_named(tmp_path: Path) -> None:
    from trade_ops.doctor.target import Explicit

    flags = Explicit(urls={"oms": "http://10.0.0.5:8099"}, valkey="redis://10.0.0.6:6390",
                     nats_monitor="http://10.0.0.7:8322")
    target = build_target(Context.resolve(tmp_path / "run"), flags=flags)
    assert [c.name for c in target.services] == ["oms"] and target.explicit
    assert target.describe().urls == {"valkey": "10.0.0.6:6390", "nats": "http://10.0.0.7:8322",
                                         "oms": "http://10.0.0.5:8099"}
    assert target.compose is None and not target.may_trade
    # trade-ops runs nothing there: a dead service's fix is a manual step, its answer a curl
    assert target.up_remedy("oms") == ("manual step: start oms where it runs (http://10.0.0.5:8099); "
                                       "trade-ops does not run it here")
    assert target.logs_remedy("oms") == "curl -sS -m 3 http://10.0.0.5:8099/health"


def test_url_flags() -> None:
    assert parse_urls(["oms=http://h:1/"]) == {"oms": "http://h:1"}
    with pytest.raises(UsageError):
        parse_urls(["oms"])


# -- configuration: compose healthchecks -----------------------------------------------------
def test_compose_healthcheck_on_the_wrong_port_is_flagged(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("""
services:
  pnl:
    image: x
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8096/health"]
  risk:
    image: x
    healthcheck:
      test: ["CMD-SHELL", "curl -f http://localhost:8103/health || exit 1"]
  oms:
    image: x
""")
    target = build_target(Context.resolve(tmp_path / "run"), compose=compose)
    by_name = {r.name: r for r in config_results(target)}
    pnl = by_name["healthcheck pnl"]
    assert pnl.status == "fail"
    assert "probes port 8096 but pnl listens on 8100" in pnl.details[0]
    assert pnl.remedy and "http://localhost:8100/health" in pnl.remedy
    assert by_name["healthcheck risk"].status == "pass"
    assert by_name["healthcheck oms"].status == "warn"  # no healthcheck at all


def test_port_mappings_and_dockerfiles_are_read(tmp_path: Path) -> None:
    # normalizer listens on 8081 inside (8091:8081): a healthcheck of 8091 probes nothing.
    # pnl's Dockerfile HEALTHCHECK probes 8096 while pnl serves 8100 (the original's).
    (tmp_path / "pnl").mkdir()
    (tmp_path / "pnl" / "Dockerfile").write_text(
        "FROM python:3.12-slim\nEXPOSE 8096\n"
        "HEALTHCHECK --interval=5s CMD curl -f http://localhost:8096/health || exit 1\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text("""
services:
  normalizer:
    image: x
    ports: ["8091:8081"]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:8091/health"]
  risk:
    image: x
    ports: ["127.0.0.1:8103:8103/tcp"]
    healthcheck:
      test: ["CMD-SHELL", "curl -f http://localhost:8103/health || exit 1"]
  pnl:
    build: ./pnl
  questdb:
    image: questdb/questdb
""")
    target = build_target(Context.resolve(tmp_path / "run"), compose=compose)
    by_name = {r.name: r for r in config_results(target)}
    normalizer = by_name["healthcheck normalizer"]
    assert normalizer.status == "fail"
    assert "probes port 8091 but normalizer listens on 8081 inside its container (ports: 8091:8081)" \
        in normalizer.problems[0]
    assert by_name["healthcheck risk"].status == "pass"
    pnl = by_name["healthcheck pnl"]
    assert pnl.status == "fail"
    assert any("Dockerfile: HEALTHCHECK probes port 8096 but pnl listens on 8100" in p for p in pnl.problems)
    assert any("EXPOSE 8096" in p for p in pnl.problems)
    assert "questdb" in by_name["docker-compose.yml unmatched"].details[0]


def test_a_compose_file_where_nothing_matched_says_so(tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  questdb:\n    image: questdb/questdb\n  web:\n    image: nginx\n")
    results = config_results(build_target(Context.resolve(tmp_path / "run"), compose=compose))
    assert len(results) == 1 and results[0].status == "warn"
    assert "nothing in" in results[0].problems[0] and "questdb, web" in results[0].problems[0]


def test_shipped_compose_matches_the_stack() -> None:
    compose = Path(__file__).resolve().parents[1] / "compose.yaml"  # committed: never missing
    target = build_target(Context.resolve(Path("/nonexistent-doctor-run")), compose=compose)
    results = config_results(target)
    assert len(results) == 14 and all(r.status == "pass" for r in results), [r.details for r in results]


def test_cli_help_and_usage_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["doctor", "--help"], catch_exceptions=False)
    assert result.exit_code == 0 and "--strict" in result.output
    result = runner.invoke(app, ["doctor", "--url", "nonsense"], catch_exceptions=False)
    assert result.exit_code == 2
    result = runner.invoke(app, ["doctor", "--json", "--watch", "1"], catch_exceptions=False)
    assert result.exit_code == 2


# -- where unfilled orders stop; reconciliation verdicts (pure) ------------------------------
def _topology() -> Any:
    from trade_ops.doctor.check_topology import Declared

    return Declared(publishes={"orders.new": ["oms"], "venue.x.order": ["exeq"], "exec.fill.>": ["venue"]},
                    consumes={"orders.new": ["exeq"], "venue.x.order": ["venue"], "exec.fill.>": ["oms"]})


@pytest.mark.parametrize(("subs", "consumers", "stage", "component"), [
    ({"oms": []}, [], "not routed to the venue: oms publishes orders.new; no subscriber", "exeq"),
    ({"oms": [], "exeq": ["orders.new"], "venue": []}, [],
     "no venue subscriber: exeq publishes venue.x.order; no subscriber", "venue"),
    ({"oms": ["exec.fill.>"], "exeq": ["orders.new"], "venue": ["venue.x.order"]}, [],
     "the venue received the order and did not fill it", "venue"),
    ({"oms": [], "exeq": ["orders.new"], "venue": ["venue.x.order"]}, [("EXEC", "oms-fills", "oms", 3)],
     "fill published and the OMS did not apply it: consumer EXEC/oms-fills is 3 behind", "oms"),
])
def test_the_stage_where_an_accepted_order_stopped(subs: dict[str, list[str]], consumers: list[Any],
                                                   stage: str, component: str) -> None:
    from trade_ops.doctor.check_topology import Consumer, Server
    from trade_ops.doctor.fillpath import follow

    server = Server(subs, {"EXEC": ["exec.>"]} if consumers else {},
                    [Consumer(s, n, o, ["exec.fill.>"], lag) for s, n, o, lag in consumers])
    found, who = follow(_topology(), server)
    assert found.startswith(stage) and who == component, (found, who)


def test_reconciliation_names_each_disagreement() -> None:
    from trade_ops.doctor.reconcile import judge

    def fill(fid: str, oid: str, side: str = "buy", qty: float = 1.0) -> dict[str, Any]:
        return {"fill_id": fid, "order_id": oid, "account": "a", "symbol": "X", "side": side,
                "quantity": qty, "_age_s": 60.0}

    data: dict[str, Any] = {
            "fills": [fill("o1-1", "o1"), fill("o2-1", "o2"), fill("ghost-1", "ghost"), fill("o3-1", "o3")],
            "whole_history": True,
            "orders": {"o1": {"status": "FILLED"}, "o2": {"status": "REJECTED"}, "ghost": None,
                       "o3": {"status": "FILLED"}},
            "lake_fill_ids": ["o1-1", "o1-1", "o2-1", "ghost-1"], "positions": {"a": {"X": 3.5}}}
    r = CheckResult("agree", "dataflow")
    judge(data, r, {"event-writer": "trade-ops logs event-writer"})
    assert r.status == "fail"
    assert r.problems == [
        "1 fill(s) for orders the OMS does not know (e.g. ghost-1)",
        "1 order(s) answered with an error (REJECTED) have fills (e.g. o2)",
        "1 fill id(s) written more than once to the lake's fills table (e.g. o1-1)",
        "1 fill(s) in the stream are not in the lake after 10s (e.g. o3-1)",
        "1 position(s) disagree with the sum of their fills (a/X: ptrc 3.5, fills 4)",
    ]
    healthy = {**data, "fills": [fill("o1-1", "o1")], "lake_fill_ids": ["o1-1"],
               "positions": {"a": {"X": 1.0}}}
    ok = CheckResult("agree", "dataflow")
    judge(healthy, ok)
    assert ok.status == "pass" and ok.summary == "1 fills, 4 orders agree"

    # ptrc not answering (doctor reads its positions itself, after the child): not compared, said.
    unread = CheckResult("agree", "dataflow")
    judge({**healthy, "positions": {}, "positions_error": "ptrc's /positions: ConnectError: refused"}, unread)
    assert unread.status == "pass" and "positions not compared: ptrc's /positions: ConnectError" in \
        " ".join(unread.details)

    # What the child sends (slim) is judged the same: the lake's other ids and the orders'
    # other fields are not sent, a repeated id outside the window still is.
    from trade_ops.doctor.reconcile import slim

    orders = {k: ({**v, "symbol": "X", "price": 1.0} if v else v) for k, v in data["orders"].items()}
    older = {**data, "lake_fill_ids": [*data["lake_fill_ids"], "old-1", "old-2", "old-2"], "orders": orders}
    sent = slim(older)
    assert sorted(sent["lake_fill_ids"]) == ["ghost-1", "o1-1", "o1-1", "o2-1", "old-2", "old-2"]
    assert sent["orders"]["o1"] == {"status": "FILLED"} and sent["orders"]["ghost"] is None
    whole, slimmed = CheckResult("agree", "dataflow"), CheckResult("agree", "dataflow")
    judge(older, whole)
    judge(sent, slimmed)
    assert slimmed.problems == whole.problems and len(whole.problems) == 5
    assert "2 fill id(s) written more than once" in whole.problems[2]


def test_ticker_age_reads_the_seeds_iso_timestamp() -> None:
    from trade_ops.doctor.check_functional import _age_s

    assert _age_s({"timestamp": "2026-01-01T00:00:00.000Z"}, 1767225610.0) == 10.0
    assert _age_s({"timestamp": "2026-01-01T00:00:00+00:00"}, 1767225600.5) == 0.5
    assert _age_s({"timestamp": "yesterday"}, 1767225600.0) is None
    assert _age_s({"ts": 1767225600000.0}, 1767225602.0) == 2.0
