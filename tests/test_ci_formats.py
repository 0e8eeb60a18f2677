"""The CI formats: --junit, --metrics, --html and the GitHub job summary, from real runs
(bench against the null endpoint, doctor against a real valkey-server and a port where
nothing listens, report perf on synthetic saved runs) and `doctor --serve` as a process."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import orjson
import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tests.helpers import Proc, cli_process
from tests.page_loads import external_loads
from tests.report_synth import save_run
from trade_ops.bench.null_server import NullServer
from trade_ops.cli import app
from trade_ops.doctor.exporter import DoctorExporter
from trade_ops.doctor.model import DoctorReport
from trade_ops.savedruns import BenchResult, SloResult

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_cwd")]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def _cases(path: Path) -> dict[str, object]:
    """JUnit file -> {case name: its result element or None when passed}, read by junitparser."""
    suites = list(JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    return {case.name: (case.result[0] if case.result else None) for case in suites[0]}


def _families(text: str) -> dict[str, Metric]:
    families = list(text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), f"a family written twice: {names}"
    return {f.name: f for f in families}


def _sample(family: Metric, **labels: str) -> float:
    found = [s.value for s in family.samples
             if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (labels, family)
    return float(found[0])


# -- bench ----------------------------------------------------------------------------------
def test_bench_writes_junit_metrics_html_and_appends_the_job_summary(
        null_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# an earlier step's part\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out_dir = tmp_path / "out"
    junit, metrics, html = out_dir / "bench.xml", out_dir / "bench.prom", out_dir / "bench.html"
    code, out = _invoke("bench", "http", "--url", null_url, "-n", "300", "-c", "2", "--slo", "p99<1us",
                        "--slo", "p99<5s", "--junit", str(junit), "--metrics", str(metrics),
                        "--html", str(html), "--json")
    doc = orjson.loads(out)
    assert code == 1 == doc["exit_code"]

    cases = _cases(junit)  # one per SLO gate, then "requests succeeded" and "measurement valid"
    assert len(cases) == len(doc["slo"]) + 2
    failed = cases["SLO p99<1us"]
    assert isinstance(failed, Failure)
    assert f"p99={doc['latency_ms']['p99']:.3f}ms" in failed.message and "limit p99<1us" in failed.message
    assert cases["SLO p99<5s"] is None and cases["requests succeeded"] is None

    fams = _families(metrics.read_text())
    labels = {"target": "http", "scenario": "latency"}
    latency = fams["trade_ops_bench_request_duration_seconds"]
    assert _sample(latency, le="+Inf", **labels) == doc["requests"] == 300
    assert _sample(latency, le="0.0001", **labels) <= _sample(latency, le="60", **labels) == 300
    assert _sample(fams["trade_ops_bench_requests"], **labels) == 300  # parsed name without _total
    assert _sample(fams["trade_ops_bench_rejections"], **labels) == doc["rejections"]
    assert _sample(fams["trade_ops_bench_slo_success"], slo="p99<1us", **labels) == 0
    assert _sample(fams["trade_ops_bench_slo_success"], slo="p99<5s", **labels) == 1
    assert _sample(fams["trade_ops_bench_success"], **labels) == 0
    assert "trade_ops_bench_requests_total{" in metrics.read_text()

    loads, images = external_loads(html.read_text())
    assert loads == [] and images >= 1  # the percentile plot (a timeline needs a full second), embedded

    code, _ = _invoke("bench", "http", "--url", null_url, "-n", "50", "-c", "1", "--json")
    assert code == 0
    text = summary.read_text()  # appended twice, the earlier step's part kept
    assert text.startswith("# an earlier step's part\n")
    assert text.count("## trade-ops bench http") == 2 and "`p99<1us`" in text and "**FAIL**" in text


def test_an_invalid_measurement_is_a_junit_error(tmp_path: Path) -> None:
    from trade_ops.render.junit import write_junit
    from trade_ops.render.verdicts import bench_suite

    result = BenchResult(target="oms", slo=[SloResult(expr="p99<10ms", passed=True, observed="p99=3.000ms")],
                         failures=[], requests=10, ok=10, valid=False,
                         invalid_reason="the generator's schedule lag decides SLO p99<10ms")
    cases = _cases(write_junit(tmp_path / "b.xml", bench_suite(result)))
    assert isinstance(cases["measurement valid"], Error)
    assert "schedule lag" in cases["measurement valid"].message


# -- doctor ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lying_oms() -> Iterator[str]:
    """A service answering HTTP 200 {"status": "unhealthy"} everywhere, as the original backend's did."""
    with NullServer(body='{"status": "unhealthy", "error": "database connection lost"}') as url:
        yield url.rstrip("/")


def test_doctor_writes_a_case_and_a_gauge_per_check(valkey_server: Proc, lying_oms: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit, metrics = tmp_path / "doctor.xml", tmp_path / "doctor.prom"
    code, out = _invoke("doctor", "--valkey", f"redis://127.0.0.1:{valkey_server.port}",
                        "--url", f"oms={lying_oms}", "--no-trade", "--no-report", "--json",
                        "--junit", str(junit), "--metrics", str(metrics))
    doc = orjson.loads(out)
    # the document is the typed report's, every key and type of it (no more, no fewer keys)
    assert msgspec.json.decode(out, type=DoctorReport, strict=True).to_json() == doc
    assert code == 1 == doc["exit_code"]
    status = {c["name"]: c["status"] for c in doc["checks"]}
    assert status["valkey"] == "pass" and status["oms"] == "fail"

    cases = _cases(junit)
    assert set(cases) == set(status)
    assert cases["valkey"] is None and isinstance(cases["oms"], Failure)
    assert "unhealthy" in cases["oms"].message  # what doctor found, in the test panel
    assert all(isinstance(cases[n], Skipped) for n, s in status.items() if s == "skip")

    fams = _families(metrics.read_text())
    success = fams["trade_ops_doctor_check_success"]
    assert _sample(success, check="valkey", group="infrastructure") == 1
    assert _sample(success, check="oms", group="services") == 0
    assert _sample(fams["trade_ops_doctor_check_status"], check="oms", status="fail") == 1
    assert _sample(fams["trade_ops_doctor_check_duration_seconds"], check="valkey") > 0
    assert _sample(fams["trade_ops_doctor_success"]) == 0

    assert "# Status report" in summary.read_text() and "Gate: FAIL" in summary.read_text()


def test_doctor_serve_runs_doctor_once_for_two_scrapes_within_the_interval(valkey_server: Proc) -> None:
    with cli_process(["doctor", "--serve", "127.0.0.1:0", "--interval", "60",
                      "--valkey", f"redis://127.0.0.1:{valkey_server.port}"]) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert "/metrics" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split()[4]
        scrapes = [_families(httpx.get(url, timeout=30).text) for _ in range(2)]
        for fams in scrapes:
            assert _sample(fams["trade_ops_doctor_runs"]) == 1
            assert _sample(fams["trade_ops_doctor_check_success"], check="valkey") == 1
        assert (_sample(scrapes[0]["trade_ops_doctor_last_run_timestamp_seconds"])
                == _sample(scrapes[1]["trade_ops_doctor_last_run_timestamp_seconds"]))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130


def test_the_exporter_runs_at_most_once_per_interval_whoever_asks() -> None:
    now = [100.0]
    calls: list[int] = []
    gate = threading.Event()

    def run() -> dict[str, object]:
        gate.wait(5)
        calls.append(1)
        return {"n": len(calls)}

    exporter = DoctorExporter(run, 30.0, clock=lambda: now[0])
    threads = [threading.Thread(target=exporter.latest) for _ in range(4)]  # concurrent scrapes
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(5)
    assert calls == [1] and exporter.runs == 1
    now[0] += 29.9
    assert exporter.latest() == {"n": 1}
    now[0] += 0.2
    assert exporter.latest() == {"n": 2} and exporter.runs == 2


def test_serve_refuses_what_it_cannot_do() -> None:
    for args in (["--serve", "nonsense"], ["--serve", ":9464", "--watch", "5"],
                 ["--serve", ":9464", "--json"], ["--serve", ":9464", "--trade"],  # it never trades
                 ["--serve", ":9464", "--metrics", "m.prom"]):
        result = CliRunner().invoke(app, ["doctor", "--valkey", "redis://127.0.0.1:1", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "--serve" in result.output


# -- report perf ----------------------------------------------------------------------------
def test_report_perf_junit_has_a_case_per_gate_and_the_html_page_loads_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    save_run(runs, "slow", median_ms=250.0, seed=1, intervals=10)
    save_run(runs, "fast", median_ms=0.8, seed=2, intervals=10, slo_passed=True)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit, html = tmp_path / "perf.xml", tmp_path / "perf.html"
    code, _ = _invoke("report", "perf", "slow", "fast", "--runs-dir", str(runs), "--out",
                      str(tmp_path / "rep" / "PERF.md"), "--expect", "2x p50", "--expect", "1000x p50",
                      "--junit", str(junit), "--html", str(html))
    assert code == 1
    cases = _cases(junit)
    assert cases["expect 2x p50"] is None
    assert isinstance(cases["expect 1000x p50"], Failure) and cases["expect 1000x p50"].message
    assert sum(name.startswith("p50: ") for name in cases) == 1  # one case per metric row too

    page = html.read_text()
    loads, images = external_loads(page)
    assert loads == [] and images >= 3  # the percentile plot and both timelines
    assert "<table>" in page
    text = summary.read_text()  # the report without its plots: a job summary cannot show files
    assert "# Performance report" in text and "](PERF-" not in text


def test_histogram_buckets_count_each_value_at_or_below_the_bound() -> None:
    from trade_ops.bench import hist

    h = hist.new()
    for seconds in (0.00005, 0.001, 0.001, 0.002, 3.0):
        hist.record_s(h, seconds)
    # a value equal to a bound is in its bucket (Prometheus' le); values are told apart to the
    # histogram's 3 significant digits (3 s is not <= 2.99 s)
    assert hist.counts_at_or_below(h, [100, 999, 1000, 2500, 2_990_000, 5_000_000]) == [1, 1, 3, 4, 4, 5]


def test_the_page_check_sees_what_a_browser_would_fetch() -> None:
    page = ('<img src="https://cdn.example/p.png"><link rel="stylesheet" href="//cdn.example/s.css">'
            '<style>@import "x.css"; body { background: url(http://a.example/b.png) }</style>'
            '<img src="data:image/png;base64,AAAA"><a href="https://example.org">a link loads nothing</a>')
    loads, images = external_loads(page)
    assert len(loads) == 3 and images == 2


def test_a_remote_image_in_the_markdown_is_shown_as_its_alt_text(tmp_path: Path) -> None:
    from trade_ops.render.html import html_page

    (tmp_path / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    page = html_page("t", "![remote](https://cdn.example/p.png) ![local](plot.png)", tmp_path)
    loads, images = external_loads(page)
    assert loads == [] and images == 1 and "[remote]" in page
