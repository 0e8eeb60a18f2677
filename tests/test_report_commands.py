"""Every command a generated report (or a saved run) prints runs as printed, and the
status report's latest benchmark is the newest run against this stack by its own time."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from trade_ops.bench.null_server import NullServer
from trade_ops.cli import app
from trade_ops.doctor.runner import latest_bench

runner = CliRunner()


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADE_OPS_RUN_DIR", str(tmp_path / "run"))


def _run(command: str) -> int:
    argv = shlex.split(command)
    assert argv[0] == "trade-ops", command
    result = runner.invoke(app, argv[1:], catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result.exit_code


def test_every_command_in_a_generated_report_runs_as_printed(tmp_path: Path) -> None:
    with NullServer() as url:
        for name in ("before", "after"):
            assert _run(f"trade-ops bench http --url {url} -n 200 -c 2 --slo 'p99<1s' --save {name}") == 0
        saved = orjson.loads((tmp_path / "reports" / "runs" / "before.json").read_bytes())
        command = saved["meta"]["command"]
        assert "--save before --force" in command and "adhoc" not in command
        assert _run("trade-ops report perf before after --out out/PERF.md") == 0
        text = (tmp_path / "out" / "PERF.md").read_text()
        assert re.search(r"\| host conditions \(before -> after\) \| load average [\d.]+ -> [\d.]+", text)
        block = re.search(r"```sh\n(.*?)```", text, re.S)
        assert block, text
        commands = [line for line in block.group(1).splitlines() if line.startswith("trade-ops ")]
        assert len(commands) == 3 and command in commands
        for printed in commands:  # the bench runs replace their saved runs: --force is printed
            assert _run(printed) == 0, printed
    doc = orjson.loads((tmp_path / "reports" / "runs" / "after.json").read_bytes())
    assert doc["results"]["requests"] == 200 and doc["settings"]["concurrency"] == 2


def test_latest_benchmark_is_the_newest_run_against_this_stack(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    def save(name: str, created: str, url: str) -> None:
        doc = {"format": "trade-ops-run/1", "name": name, "created_at": created,
               "settings": {"url": url}, "results": {"latency_ms": {"p50": 1.0}, "slo": [], "passed": True}}
        (runs / f"{name}.json").write_bytes(orjson.dumps(doc))

    save("newer-elsewhere", "2026-01-03T00:00:00+00:00", "http://127.0.0.1:8099/orders")
    save("ours-old", "2026-01-01T00:00:00+00:00", "http://127.0.0.1:11099/orders")
    save("ours-new", "2026-01-02T00:00:00+00:00", "http://127.0.0.1:11099/orders")
    (runs / "ours-old.json").touch()  # the newest file by mtime is not the newest run
    found = latest_bench({"http://127.0.0.1:11099"}, runs)
    assert found is not None and found["name"] == "ours-new"
    assert found["saved_at"] == "2026-01-02T00:00:00+00:00"
    assert latest_bench({"http://127.0.0.1:12345"}, runs) is None  # no run against this stack: none
