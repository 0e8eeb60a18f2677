"""Doctor on the original backend's services (tests/apps/legacy.py), given only their URLs.

Each defect the operators saw is named with the service's own evidence, the right root
cause (QuestDB, external; valkey, for the `redis: false` ones), and a remedy that runs
there; and doctor touches no port it was not given.
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

from tests.helpers import Proc, cli_json, start_nats
from tests.legacy_stack import start_legacy, stop_all
from trade_ops import infra
from trade_ops.cli import app
from trade_ops.doctor.check_services import NO_LIVEZ, UNHEALTHY_200

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def legacy_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A NATS server of its own: no stream another test made may capture the legacy subjects."""
    proc = start_nats(tmp_path_factory.mktemp("legacy-nats"), provision=False)  # not trade-ops' topology
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory, legacy_nats: Proc) -> Iterator[dict[str, Proc]]:
    procs = start_legacy(tmp_path_factory.mktemp("legacy"), legacy_nats.url)
    try:
        yield procs
    finally:
        stop_all(procs)


# What the original backend's services publish and consume, as its operator would declare it.
LEGACY_TOPOLOGY = """
[services.oms]
publishes = ["orders.new"]
consumes = ["exec.fill.>"]
[services.exeq]
consumes = ["orders.new"]
publishes = ["venue.mock.order"]
[services.live-gateway]
consumes = ["venue.mock.order"]
publishes = ["exec.fill.>"]
"""


def urls(procs: dict[str, Proc]) -> list[str]:
    return [arg for role, p in procs.items() for arg in ("--url", f"{role}={p.url}")]


def doctor(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    return cli_json("doctor", "--json", "--no-report", "--timeout", "1", *args, env=env)


def by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in doc["checks"]}


def run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=20, check=False)


def test_each_legacy_defect_has_its_evidence_cause_and_a_remedy_that_runs(legacy: dict[str, Proc]) -> None:
    code, doc = doctor(*urls(legacy))
    checks = by_name(doc)
    assert code == 1 and doc["target"]["explicit"] is True

    # Scope: exactly what was named, at the address given; nothing at a default port.
    given = {f"127.0.0.1:{p.port}" for p in legacy.values()}
    assert set(doc["target"]["contacted"]) <= given, doc["target"]["contacted"]
    assert {c["name"] for c in doc["checks"] if c["group"] == "infrastructure"} == set()
    assert doc["target"]["urls"] == {role: p.url for role, p in legacy.items()}
    assert doc["summary"]["services"]["total"] == len(legacy)

    # No /livez is information, not a failure; legacy "ok"/"healthy" bodies pass.
    for role in ("gateway", "risk", "oms", "exeq", "live-gateway"):
        assert checks[role]["status"] == "pass", checks[role]
        assert NO_LIVEZ in checks[role]["details"]

    # A 503 whose error names an unreachable questdb:9000: its own answer, an external cause.
    writer = checks["event-writer"]
    assert writer["status"] == "fail" and writer["data"]["http_status"] == 503
    assert writer["problems"][0].startswith("unhealthy: HTTP 503")
    assert "questdb:9000" in writer["problems"][0] and "serve GET /health" not in json.dumps(writer)
    assert writer["cause"] == "questdb:9000" and writer["blocked_by"] == ["questdb:9000"]
    assert writer["rests_on"] == ["error text"]
    causes = {c["name"]: c for c in doc["root_causes"]}
    questdb = causes["questdb:9000"]  # an external named by its host and port, as the text gave it
    assert questdb["kind"] == "external" and "event-writer" in questdb["blocks"]
    assert any("questdb:9000" in e for e in questdb["evidence"]) and questdb["rests_on"] == ["error text"]

    # HTTP 200 with {"status": "unhealthy", "checks": {"redis": false}}: valkey is the cause.
    for role in ("ptrc", "hot-cache"):
        assert checks[role]["status"] == "fail" and checks[role]["problems"][0] == UNHEALTHY_200
        assert "redis: False" in checks[role]["problems"] and checks[role]["cause"] == "valkey"
    assert causes["valkey"]["kind"] == "not examined"
    assert set(causes["valkey"]["blocks"]) == {"ptrc", "hot-cache"}

    # risk /check answers 500 without price; the gateway has no /tickers.
    risk = checks["risk approves a small order"]
    assert risk["status"] == "fail" and "HTTP 500" in risk["problems"][0]
    # /tickers and the unknown-symbol 404 are trade-ops' own API rules: skipped, with why.
    for name in ("gateway /tickers fresh", "gateway unknown symbol -> 404"):
        assert checks[name]["status"] == "skip", checks[name]
        assert checks[name]["summary"].startswith("skipped: gateway is not a trade-ops service")
    assert sorted(doc["target"]["foreign"]) == sorted(legacy) and doc["target"]["own"] == []
    # Not a stack trade-ops started: no order is placed without --trade.
    assert checks["oms order round trip"]["status"] == "skip"

    # Remedies: never a trade-ops command here; each one is a command that runs, or a manual step.
    remedies = {c["remedy"] for c in doc["checks"] if c["status"] == "fail"} | \
        {c["remedy"] for c in doc["root_causes"]}
    assert remedies and None not in remedies
    for remedy in remedies:
        assert "trade-ops up" not in remedy and "trade-ops logs" not in remedy, remedy
        command = remedy.split("see: ", 1)[-1]
        if command.startswith("curl "):
            done = run(command)
            assert done.returncode == 0, (command, done.stderr)
        else:
            assert "manual step" in remedy, remedy
    assert run(risk["remedy"]).stdout == "Internal Server Error"  # it reproduces what doctor saw


def test_the_human_view_shows_a_blocked_service_s_own_answer(legacy: dict[str, Proc]) -> None:
    result = CliRunner().invoke(app, ["doctor", "--no-report", "--timeout", "1",
                                      "--url", f"event-writer={legacy['event-writer'].url}"],
                                catch_exceptions=False)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "event-writer blocked by questdb" in text
    assert "unhealthy: HTTP 503" in text and "questdb:9000" in text
    assert "questdb:9000 (external)" in text and "manual step" in text


def test_the_status_report_shows_the_addresses_probed(legacy: dict[str, Proc], tmp_path: Path) -> None:
    report = tmp_path / "STATUS_REPORT.md"
    writer = legacy["event-writer"]
    result = CliRunner().invoke(app, ["doctor", "--report", str(report), "--timeout", "1",
                                      "--url", f"event-writer={writer.url}"], catch_exceptions=False)
    md = report.read_text()
    assert result.exit_code == 1
    assert f"| ❌ event-writer | {writer.url} |" in md and "| 503 |" in md
    assert ":8090" not in md  # the default port of event-writer, which was not probed
    assert "**questdb:9000** (external): named by event-writer" in md


def test_an_s3_lake_that_refuses_fails_alone(legacy: dict[str, Proc]) -> None:
    closed = infra.free_port()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}", "AWS_ALLOW_HTTP": "true",
           "AWS_ACCESS_KEY_ID": "doctor", "AWS_SECRET_ACCESS_KEY": "doctor", "AWS_REGION": "us-east-1"}
    gateway = ["--url", f"gateway={legacy['gateway'].url}", "--url", f"ptrc={legacy['ptrc'].url}"]
    _, without = doctor(*gateway)
    code, doc = doctor(*gateway, "--lake", "s3://doctor-bucket/lake", env=env)
    checks = by_name(doc)
    assert code == 1 and checks["lake"]["status"] == "fail"
    assert "s3://doctor-bucket/lake" in checks["lake"]["problems"][0]
    # Every other verdict is what it was without the lake.
    assert {c["name"]: c["status"] for c in doc["checks"] if c["name"] != "lake"} == \
        {c["name"]: c["status"] for c in without["checks"]}


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--url", "oms"], 2, "expected SERVICE=http://host:port"),
    (["--url", "oms=ftp://127.0.0.1:1"], 2, "expected SERVICE=http://host:port"),
    (["--url", "oms=http://127.0.0.1:notaport"], 2, "--url"),
    (["--url", "nosuch=http://127.0.0.1:1"], 2, "no service 'nosuch'"),
    (["--valkey", "http://127.0.0.1:1"], 2, "expected redis://host:port"),
])
def test_malformed_targets_are_usage_errors(args: list[str], code: int, words: str) -> None:
    result = CliRunner().invoke(app, ["doctor", "--no-report", *args], catch_exceptions=False)
    assert result.exit_code == code and words in result.output, result.output
    assert "Traceback" not in result.output


def test_unreachable_and_non_http_urls_and_a_bad_stack_file(tmp_path: Path, nats_server: Proc) -> None:
    nothing = infra.free_port()
    result = CliRunner().invoke(app, ["doctor", "--no-report", "--timeout", "0.5",
                                      "--url", f"oms=http://127.0.0.1:{nothing}"], catch_exceptions=False)
    assert result.exit_code == 3 and "Nothing of the stack is reachable" in result.output
    assert "trade-ops up" not in result.output  # it would start trade-ops' stack, not this one
    assert "Traceback" not in result.output
    # A NATS server is no HTTP server: a failed check with the reason, not a crash.
    code, doc = doctor("--url", f"oms=http://127.0.0.1:{nats_server.port}")
    oms = by_name(doc)["oms"]
    assert code in (1, 3) and oms["status"] == "fail" and oms["problems"]
    stack = tmp_path / "stack.toml"
    stack.write_text('[services.oms]\nurl = "http://127.0.0.1:1"\ndepends_on = ["nosuch"]\n')
    result = CliRunner().invoke(app, ["doctor", "--no-report", "--stack", str(stack)], catch_exceptions=False)
    assert result.exit_code == 2 and "unknown component 'nosuch'" in result.output
    assert "Traceback" not in result.output
    assert os.path.exists(stack)


def monitor_of(nats: Proc) -> str:
    """The monitoring URL, as nats-server logs it ("Starting http monitor on 127.0.0.1:PORT")."""
    for line in nats.log_text().splitlines():
        if "Starting http monitor on" in line:
            return "http://" + line.rsplit(" ", 1)[-1].replace("0.0.0.0", "127.0.0.1")
    raise AssertionError(f"no monitoring port in the nats log: {nats.log_text()[-500:]}")


def test_orders_that_never_fill_are_traced_to_the_venue_subscription(legacy: dict[str, Proc],
                                                                      legacy_nats: Proc,
                                                                      tmp_path: Path) -> None:
    stack = tmp_path / "legacy.toml"
    stack.write_text(LEGACY_TOPOLOGY)
    monitor = monitor_of(legacy_nats)
    code, doc = doctor("--stack", str(stack), *urls(legacy), "--nats", legacy_nats.url,
                       "--nats-monitor", monitor, "--trade")
    checks = by_name(doc)
    assert code == 1

    # The topology, from the server: exeq publishes where nobody listens; the venue's
    # /health says ok while it holds no subscription.
    venue = checks["messaging venue.mock.order"]
    assert venue["status"] == "fail" and venue["component"] == "live-gateway"
    assert "exeq publishes venue.mock.order; no subscriber: orders routed there never reach a venue" \
        in venue["problems"]
    assert any(p.startswith("live-gateway declares it consumes venue.mock.order but holds no subscription")
               for p in venue["problems"])
    assert checks["live-gateway"]["status"] == "pass"  # the lie the topology sees through
    assert checks["messaging orders.new"]["status"] == "pass"
    assert checks["messaging orders.new"]["data"]["subscribers"] == ["exeq"]
    assert checks["nats"]["status"] == "pass"

    # The round trip speaks this OMS's contract (from its OpenAPI schema), is ACCEPTED,
    # never fills, and names the stage where it stopped.
    trip = checks["oms order round trip"]
    assert trip["status"] == "fail" and "Order validation failed" not in json.dumps(trip)
    assert "order_type->type" in trip["data"]["contract"] and "price" in trip["data"]["contract"]
    assert trip["data"]["stage"].startswith("no venue subscriber: exeq publishes venue.mock.order")
    assert "still ACCEPTED" in trip["problems"][0] and "orders never fill" in trip["problems"][0]
    assert trip["cause"] == "live-gateway"

    # Still only what was named.
    given = {f"127.0.0.1:{p.port}" for p in legacy.values()} | \
        {f"127.0.0.1:{legacy_nats.port}", monitor.removeprefix("http://")}
    assert set(doc["target"]["contacted"]) <= given


def test_a_4xx_order_shows_its_body_and_the_contract_hint(legacy: dict[str, Proc], tmp_path: Path) -> None:
    stack = tmp_path / "wrong-contract.toml"
    stack.write_text("[contracts.order]\nfields = { order_type = \"order_type\" }\n")
    code, doc = doctor("--stack", str(stack), "--url", f"oms={legacy['oms'].url}", "--trade")
    trip = by_name(doc)["oms order round trip"]
    assert code == 1 and trip["status"] == "fail"
    assert "HTTP 400" in trip["problems"][0] and "Order validation failed" in trip["problems"][0]
    assert "set [contracts.order] in the stack file" in trip["problems"][0]
    assert "[contracts.order] in the stack file" in trip["data"]["contract"]


def test_no_trade_by_default_nor_with_no_trade(legacy: dict[str, Proc]) -> None:
    for extra in ([], ["--no-trade"]):
        _, doc = doctor("--url", f"oms={legacy['oms'].url}", *extra)
        trip = by_name(doc)["oms order round trip"]
        assert trip["status"] == "skip" and "read-only" in trip["details"][0]
