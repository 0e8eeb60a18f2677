"""`trade-ops report perf|status` through Typer's CliRunner, on synthetic saved runs."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import orjson
import pytest
from typer.testing import CliRunner

from tests.report_synth import save_run
from trade_ops.cli import app
from trade_ops.report.result import ReportResult

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("runs")
    save_run(d, "slow", median_ms=250.0, seed=1, intervals=10)
    save_run(d, "fast", median_ms=0.8, seed=2, intervals=10, slo_passed=True)
    save_run(d, "spike", median_ms=0.8, seed=3, intervals=10, scenario="spike")
    return d


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def perf(runs: Path, out: Path, *extra: str) -> tuple[int, str]:
    return invoke("report", "perf", "slow", "fast", "--runs-dir", str(runs), "--out", str(out), *extra)


def test_report_written_with_table_plots_and_commands(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep" / "PERFORMANCE_REPORT.md"
    code, output = perf(runs, out, "--expect", "100x p50", "--expect", "50% p99")
    assert code == 0, output
    text = out.read_text()
    assert re.search(r"p50: 2\d\d ms -> 0\.\d+ ms, \d{3}x faster", text), text
    assert "Mann-Whitney U" in text and "p=" in text
    for name in ("percentiles", "timeline-before", "timeline-after"):
        for ext in ("png", "svg"):
            path = out.parent / f"PERFORMANCE_REPORT-{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 5000, path
        assert f"](PERFORMANCE_REPORT-{name}.png)" in text  # embedded, relative to the report
    assert "PASS (p99=" in text  # SLO verdicts of both runs
    assert "trade-ops bench oms --scenario load" in text
    assert f"trade-ops report perf slow fast --out {out} --runs-dir {runs}" in text


def test_markdown_tables_are_well_formed(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "PERF.md"
    assert perf(runs, out)[0] == 0
    lines = out.read_text().splitlines()
    tables, current = [], []
    for line in [*lines, ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) >= 3  # results, SLOs, runs
    for table in tables:
        pipes = [len(re.findall(r"(?<!\\)\|", row)) for row in table]
        assert len(set(pipes)) == 1, table
        assert re.fullmatch(r"\|(---\|)+", table[1]), table[1]
        assert all(row.endswith("|") for row in table)


def test_scenario_mismatch_refused_then_forced(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "PERF.md"
    args = ("report", "perf", "slow", "spike", "--runs-dir", str(runs), "--out", str(out))
    code, output = invoke(*args)
    assert code == 2, output
    assert "different scenarios: 'load' vs 'spike'" in output and "--force" in output
    assert not out.exists()
    code, output = invoke(*args, "--force")
    assert code == 0, output
    assert "Compared with --force" in out.read_text()


def test_gates_exit_codes(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "PERF.md"
    assert perf(runs, out, "--expect", "5x p50")[0] == 0
    code, output = perf(runs, out, "--expect", "5x p50", "--expect", "2x throughput")
    assert code == 1, output
    assert "NOT MET" in output and "NOT MET" in out.read_text()
    code, output = perf(runs, out, "--expect", "five times p50")
    assert code == 2 and "bad --expect" in output
    code, output = perf(runs, out, "--min-effect", "lots")
    assert code == 2 and "bad --min-effect" in output


def test_unknown_run_is_a_usage_error(runs: Path, tmp_path: Path) -> None:
    code, output = invoke("report", "perf", "slow", "nope", "--runs-dir", str(runs))
    assert code == 2 and "no run named or at 'nope'" in output and "fast" in output


def test_status_rerenders_from_last_doctor_result(tmp_path: Path) -> None:
    out = tmp_path / "STATUS_REPORT.md"
    code, output = invoke("report", "status", "--run-dir", str(tmp_path), "--out", str(out))
    assert code == 3 and "doctor-last.json" in output
    (tmp_path / "doctor-last.json").write_bytes(orjson.dumps({"status": "pass", "services": []}))
    code, output = invoke("report", "status", "--run-dir", str(tmp_path), "--out", str(out))
    assert code == 3 and "is not a doctor report" in output and not out.exists()
    report = {"tool": "trade-ops doctor", "status": "pass", "exit_code": 0, "strict": False,
              "reachable": True, "started_at": "2026-01-02T03:04:05Z", "duration_ms": 900.0,
              "root_causes": [], "bench": None,
              "summary": {"services": {"pass": 1, "warn": 0, "fail": 0, "total": 1}},
              "checks": [{"name": "oms", "group": "services", "status": "pass", "summary": "0.1.0 · 2 ms"}],
              "target": {"stack": "builtin", "offset": 0, "run_dir": str(tmp_path)}, "environment": {}}
    (tmp_path / "doctor-last.json").write_bytes(orjson.dumps(report))
    code, output = invoke("report", "status", "--run-dir", str(tmp_path), "--out", str(out))
    assert code == 0, output
    md = out.read_text()
    assert md.startswith("# Status report") and "**Gate: PASS**" in md and "2026-01-02T03:04:05Z" in md
    assert "| ✅ oms |" in md


def test_json_is_one_document_on_success_and_on_error(runs: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "perf", "slow", "fast", "--runs-dir", str(runs), "--out",
                                      str(tmp_path / "P.md"), "--expect", "p99 <= 1.1x", "--json"])
    doc = orjson.loads(result.stdout)
    # the document is the typed result's, every key and type of it (no more, no fewer keys)
    typed = msgspec.json.decode(result.stdout, type=ReportResult, strict=True)
    assert typed.to_json() == doc
    assert result.exit_code == 0 and doc["status"] == "pass" and doc["expectations"][0]["met"]
    assert {r["metric"] for r in doc["rows"]} >= {"p50", "p99", "throughput"}
    missing = CliRunner().invoke(app, ["report", "perf", "slow", "nope", "--runs-dir", str(runs), "--json"])
    err = orjson.loads(missing.stdout)
    assert missing.exit_code == 2 and err == {**err, "status": "error", "exit_code": 2}
    assert "no run named or at 'nope'" in err["message"]
