"""`trade-ops bench` through the CLI: exit codes, the JSON document, saved runs."""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest
from typer.testing import CliRunner

from trade_ops import infra
from trade_ops.bench import hist
from trade_ops.bench.runs import histograms
from trade_ops.cli import app
from trade_ops.savedruns import BenchResult, SavedRun, read_run

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_cwd")]

runner = CliRunner()


def _bench(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["bench", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_json_document(null_url: str) -> None:
    code, out, _ = _bench("http", "--url", null_url, "-n", "200", "-c", "2", "--slo", "p99<2s", "--json")
    assert code == 0, out
    doc = orjson.loads(out)
    # the document is the typed result's, every key and type of it (no more, no fewer keys)
    assert msgspec.json.decode(out, type=BenchResult, strict=True).to_json() == doc
    for key in ("requests", "errors", "errors_by_kind", "rejections", "rate", "duration_s", "valid",
                "invalid_reason", "latency_ms", "service_time_ms", "schedule_lag_ms", "slo", "passed"):
        assert key in doc
    assert set(doc["latency_ms"]) == {"p50", "p90", "p99", "p999", "max", "mean"}
    assert doc["requests"] == 200 and doc["passed"] and doc["status"] == "pass" and doc["exit_code"] == 0
    # -n/-c override the default scenario's load and keep its SLOs; --slo adds; errors<1% by default
    assert [c["expr"] for c in doc["slo"]] == ["mean<50ms", "p99<100ms", "p99<2s", "errors<1%"]
    assert doc["scenario"] == "latency"


def test_slo_breach_exits_1(null_url: str) -> None:
    code, out, err = _bench("http", "--url", null_url, "-n", "50", "--slo", "p50<1us")
    assert code == 1, out
    assert "FAIL" in out + err  # (a --json run earlier in this process routes human output to stderr)


def test_bad_slo_exits_2(null_url: str) -> None:
    code, _, err = _bench("http", "--url", null_url, "-n", "50", "--slo", "p99<100")
    assert code == 2 and "needs a unit" in err


def test_usage_errors_exit_2() -> None:
    assert _bench("oms", "--url", "http://10.1.2.3:8099", "-n", "5")[0] == 2  # not loopback
    assert _bench("nope")[0] == 2
    assert _bench("oms", "--scenario", "nope")[0] == 2
    assert _bench("http", "-n", "5")[0] == 2  # no --url


def test_unreachable_target_exits_3() -> None:
    code, _, err = _bench("oms", "--url", f"http://127.0.0.1:{infra.free_port()}", "-n", "5")
    assert code == 3 and "nothing reachable" in err


def test_saved_run_round_trips(null_url: str, tmp_path: Path) -> None:
    code, out, _ = _bench("http", "--url", null_url, "--rate", "300", "--duration", "2", "--warmup", "0.3",
                          "--slo", "p99<1s", "--save", "rt")
    assert code in (0, 4), out  # 4: on a busy host the generator's lag can make the run invalid
    path, doc = read_run("rt", tmp_path / "run" / "runs")
    # the file is the typed run's, every key and type of it (no more, no fewer keys)
    assert msgspec.to_builtins(msgspec.json.decode(path.read_bytes(), type=SavedRun, strict=True)) \
        == orjson.loads(path.read_bytes())
    assert doc.format == "trade-ops-run/1" and doc.name == "rt"
    assert doc.settings.model == "open" and doc.settings.rate == 300
    assert doc.calibration is not None and doc.calibration.overhead_p50_ms > 0
    assert (tmp_path / "run" / "bench-calibration.json").is_file()  # cached for the next save
    assert doc.scenario["hash"] and doc.meta.host.cores >= 1
    decoded = histograms(doc)
    for name, key in (("latency", "latency_ms"), ("service_time", "service_time_ms"),
                      ("schedule_lag", "schedule_lag_ms")):
        assert hist.summary_ms(decoded[name]) == msgspec.to_builtins(getattr(doc.results, key))
    assert decoded["latency"].get_total_count() == doc.results.requests == 600
    assert sum(iv.count for iv in doc.intervals) == 600
    assert sum(hist.decode(iv.latency).get_total_count() for iv in doc.intervals) == 600
    hgrm = (tmp_path / "run" / "runs" / "rt.hgrm").read_text()
    assert "Value     Percentile TotalCount" in hgrm and "#[Max" in hgrm
