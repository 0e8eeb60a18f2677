"""Verdicts a CI can trust: errors fail by default, exit codes tell failure from an invalid
measurement, lag is judged against the latencies and SLOs measured, Ctrl-C summarises."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.helpers import cli_json, interrupt
from trade_ops.bench.loadgen import LoadSpec, Raw, run_load
from trade_ops.bench.null_server import NullServer
from trade_ops.bench.results import analyse
from trade_ops.bench.slo import parse_slos
from trade_ops.bench.target import OK, Target
from trade_ops.bench.targets import make_target
from trade_ops.bench.verdict import judge, with_default_gates
from trade_ops.cli import app
from trade_ops.errors import ExitCode
from trade_ops.savedruns import BenchResult

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_cwd")]

runner = CliRunner()


def _bench_json(*args: str) -> tuple[int, dict[str, Any]]:
    return cli_json("bench", *args, "--json")


def test_a_404_target_fails_with_its_error_bodies() -> None:
    with NullServer(status=404, body='{"detail":"Not Found"}') as url:
        code, doc = _bench_json("gateway", "--url", url, "-n", "100")
    assert code == ExitCode.FAILED and doc["exit_code"] == 1 and doc["status"] == "fail"
    assert doc["errors_by_kind"] == {"http_404": 100} and doc["ok"] == 0
    assert doc["error_samples"]["http_404"] == ['{"detail":"Not Found"}'] * 3
    assert "no request succeeded" in doc["failures"]
    assert any(c["expr"] == "errors<1%" and not c["passed"] for c in doc["slo"])


def test_an_oms_that_answers_400_to_every_order_fails_and_shows_why() -> None:
    body = '{"detail":"field qty is required"}'
    with NullServer(status=400, body=body) as url:
        result = runner.invoke(app, ["bench", "oms", "--url", url, "-c", "1", "-n", "200"])
    assert result.exit_code == ExitCode.FAILED, result.output
    assert "http_400: " + body in result.output and "FAIL" in result.output
    assert "PASS" not in result.output


@pytest.mark.parametrize("body", [
    '{"result":"rejected","detail":"rejected by risk: kill switch engaged"}',  # ours (services.contract)
    '{"status":"REJECTED","reason":"kill switch engaged"}',  # the original backend's OMS
])
def test_every_order_rejected_by_risk_fails_with_that_reason(body: str) -> None:
    with NullServer(status=422, body=body) as url:
        code, doc = _bench_json("oms", "--url", url, "-n", "50", "--slo", "errors==0")
    assert code == ExitCode.FAILED
    assert doc["rejections"] == 50 and doc["errors"] == 0  # rejections stay apart from errors
    assert doc["failures"][0].startswith("every order was rejected: ")
    assert "kill switch engaged" in doc["failures"][0]  # with the OMS's own words
    assert "kill switch engaged" in doc["rejection_samples"][0] and "rejected" not in doc["error_samples"]


def test_a_user_error_slo_replaces_the_default_gate() -> None:
    assert [s.expr for s in with_default_gates(parse_slos(["p99<1s"]))] == ["p99<1s", "errors<1%"]
    assert [s.expr for s in with_default_gates(parse_slos(["errors<5%"]))] == ["errors<5%"]


@dataclass
class _Stalling(Target):
    """A target whose request builder blocks the generator's event loop once: a real stall
    of the generator (not of the target), as a GC pause or a descheduled process would be."""

    at: int = 0
    stall_s: float = 0.0

    @classmethod
    def of(cls, url: str, at: int, stall_s: float) -> _Stalling:
        http = make_target("http", url)
        return cls(**{f.name: getattr(http, f.name) for f in fields(http)}, at=at, stall_s=stall_s)

    def request(self, i: int) -> bytes:
        if i == self.at:
            time.sleep(self.stall_s)
        return super().request(i)


@pytest.fixture(scope="module")
def delayed() -> Iterator[str]:
    with NullServer(delay_ms=200) as url:
        yield url


def _stalled_run(url: str, stall_s: float) -> BenchResult:
    # a target answering in 200 ms, an SLO of 1 s: a host's usual scheduling delays are far below that scale
    spec = LoadSpec("open", rate=50, duration_s=3, warmup_s=0.2, concurrency=64)
    target = _Stalling.of(url, at=60, stall_s=stall_s)
    result = analyse(run_load(target, spec), spec).result
    judge(result, with_default_gates(parse_slos(["p99<1s"])))
    return result


def test_a_generator_stall_beyond_the_slo_scale_is_invalid(delayed: str) -> None:
    r = _stalled_run(delayed, 1.5)
    assert not r.valid and r.status == "invalid" and r.exit_code == int(ExitCode.INVALID) == 4
    assert "schedule lag" in (r.invalid_reason or "")
    # the SLO is breached, but by the generator: the code says "not valid" (4), not "failed" (1)
    assert r.latency_ms.p99 > 1000 and r.schedule_lag_ms.max >= 1400


def _raw_with_stall(stall_s: float) -> tuple[Raw, LoadSpec]:
    """The records of a 50/s run against a target answering in 200-206 ms, in which the
    generator stalled once for stall_s at t=1.2 s: every request due meanwhile is sent when
    it wakes. Deterministic, so it holds on a host of any load."""
    spec = LoadSpec("open", rate=50, duration_s=3, concurrency=64)
    raw = Raw(planned=150, scheduled=150)
    for i in range(150):
        intended = i / 50
        dispatched = max(intended, 1.2 + stall_s) if 1.2 <= intended < 1.2 + stall_s else intended
        raw.add(i, intended, dispatched, dispatched, dispatched + 0.2 + 0.001 * (i % 7), OK, 200)
    return raw, spec


@pytest.mark.parametrize(("stall_s", "valid"), [(1.5, False), (0.3, False), (0.005, True), (0.0, True)])
def test_injected_stalls_against_the_slo_scale(stall_s: float, valid: bool) -> None:
    raw, spec = _raw_with_stall(stall_s)
    result = analyse(raw, spec).result
    code = judge(result, with_default_gates(parse_slos(["p99<1s"])))
    assert result.valid is valid, result.invalid_reason
    assert code == (ExitCode.OK if valid else ExitCode.INVALID)


def test_a_small_real_generator_stall_is_not(delayed: str) -> None:
    r = _stalled_run(delayed, 0.005)
    if os.getloadavg()[0] > 8 * (os.cpu_count() or 1):  # a host this busy delays the generator by itself
        assert r.status in ("pass", "invalid")
        return
    assert r.valid, r.invalid_reason
    assert r.status == "pass" and r.exit_code == 0


def test_an_invalid_run_is_still_saved_and_marked(delayed: str, tmp_path: Path) -> None:
    code, doc = _bench_json("http", "--url", delayed, "--rate", "100", "-d", "1", "--slo", "p99<1ms",
                            "--max-lag", "0", "--save", "inv")
    assert code == ExitCode.INVALID and doc["status"] == "invalid"
    saved = orjson.loads((tmp_path / "run" / "runs" / "inv.json").read_bytes())
    assert saved["results"]["valid"] is False and saved["results"]["invalid_reason"]


def test_flags_override_the_default_scenario_load_and_keep_its_slos() -> None:
    with NullServer() as url:
        result = runner.invoke(app, ["bench", "http", "--url", url, "-c", "1", "-n", "300"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "scenario latency, flags override concurrency=1, requests=300" in text
    assert "SLOs: mean<50ms, p99<100ms, errors<1% (default)" in text
    assert "adhoc" not in text


def test_find_max_honours_duration_and_the_scenarios_slos() -> None:
    with NullServer() as url:
        code, doc = _bench_json("http", "--url", url, "--find-max", "-d", "0.5", "--scenario", "capacity")
    steps = doc["find_max"]["steps"]
    assert code in (0, 1, 4) and steps
    # each step lasts -d seconds (plus at most 1 s of warm-up), not the scenario's 5 s
    assert doc["duration_s"] <= 0.6
    assert [c["expr"] for c in doc["slo"]] == ["p99<50ms", "errors<0.1%"]


def test_target_list_names_only_bench_targets() -> None:
    result = runner.invoke(app, ["bench", "omss"])
    assert result.exit_code == 2
    text = " ".join(result.stderr.split())
    assert "did you mean 'oms'" in text
    assert "valkey" not in text and "nats" not in text


def test_json_on_error_is_one_document() -> None:
    from trade_ops import infra

    result = runner.invoke(app, ["bench", "oms", "--url", f"http://127.0.0.1:{infra.free_port()}", "-n", "5",
                                 "--json"])
    assert result.exit_code == 3
    doc = orjson.loads(result.stdout)
    assert doc["status"] == "error" and doc["exit_code"] == 3 and "nothing reachable" in doc["message"]
    usage = runner.invoke(app, ["bench", "oms", "--slo", "p99<100", "--json"])
    assert usage.exit_code == 2 and orjson.loads(usage.stdout)["exit_code"] == 2


def test_save_refuses_an_existing_name_without_force() -> None:
    with NullServer() as url:
        first = runner.invoke(app, ["bench", "http", "--url", url, "-n", "20", "--save", "twice"])
        again = runner.invoke(app, ["bench", "http", "--url", url, "-n", "20", "--save", "twice"])
        forced = runner.invoke(app, ["bench", "http", "--url", url, "-n", "20", "--save", "twice", "--force"])
    assert first.exit_code == 0, first.output
    assert again.exit_code == 2 and "already saved" in again.stderr
    assert "--force" in again.stderr.replace("\n", " ")
    assert forced.exit_code == 0, forced.output


def test_ctrl_c_prints_the_partial_summary_marked_interrupted(tmp_path: Path) -> None:
    with NullServer() as url:
        # the line saying what is measured comes right before the load starts
        code, out, err = interrupt(["bench", "http", "--url", url, "--rate", "200", "-d", "30", "--no-live"],
                                   "scenario latency", on_stderr=True, after_s=1.5, timeout=60)
    assert code == 130, out + err
    assert "INTERRUPTED" in out and "latency" in out and "interrupted" in out
    assert "Traceback" not in out + err


def test_repeat_saves_each_run_for_a_run_by_run_comparison(tmp_path: Path) -> None:
    from trade_ops.report.runs import load_run

    with NullServer() as url:
        code, doc = _bench_json("http", "--url", url, "-n", "40", "--repeat", "3", "--save", "rep")
    assert code == 0 and doc["repeat"] == 3 and doc["requests"] == 120
    run = load_run("rep", tmp_path / "run" / "runs")
    assert len(run.repeats) == 3 and [r.results.requests for r in run.repeats] == [40, 40, 40]
    assert run.settings.repeat == 3 and "--repeat 3" in str(run.meta.command)
