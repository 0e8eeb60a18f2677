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

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_cwd")]

runner = CliRunner()


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
        saved = orjson.loads((tmp_path / "run" / "runs" / "before.json").read_bytes())
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
    doc = orjson.loads((tmp_path / "run" / "runs" / "after.json").read_bytes())
    assert doc["results"]["requests"] == 200 and doc["settings"]["concurrency"] == 2


def test_latest_benchmark_is_the_newest_run_against_this_stack(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()

    def save(name: str, created: str, url: str) -> None:
        doc = {"format": "trade-ops-run/1", "name": name, "created_at": created, "histograms": {},
               "settings": {"url": url}, "results": {"latency_ms": {"p50": 1.0}, "slo": [], "passed": True}}
        (runs / f"{name}.json").write_bytes(orjson.dumps(doc))

    save("newer-elsewhere", "2026-01-03T00:00:00+00:00", "http://127.0.0.1:8099/orders")
    save("ours-old", "2026-01-01T00:00:00+00:00", "http://127.0.0.1:11099/orders")
    save("ours-new", "2026-01-02T00:00:00+00:00", "http://127.0.0.1:11099/orders")
    (runs / "ours-old.json").touch()  # the newest file by mtime is not the newest run
    found = latest_bench({"http://127.0.0.1:11099"}, runs)
    assert found is not None and found.name == "ours-new"
    assert found.saved_at == "2026-01-02T00:00:00+00:00"
    assert latest_bench({"http://127.0.0.1:12345"}, runs) is None  # no run against this stack: none


def test_a_command_printed_for_a_run_with_a_token_runs_as_printed(tmp_path: Path) -> None:
    """A secret header is never saved; the saved run's command takes it from an environment
    variable (not `REDACTED`, which sent the word as the token), and runs as printed in a shell."""
    import os
    import subprocess
    import sys

    from tests.apps.stacks import ROOT
    from tests.helpers import start_delay_app

    app_proc = start_delay_app(tmp_path, TOKEN="s3cret")
    try:
        url = f"{app_proc.url}/check"
        assert _run(f"trade-ops bench http --url {url} -n 20 -c 1 --save open") == 1  # 401s: errors fail
        assert _run(f"trade-ops bench http --url {url} -n 20 -c 1 -H 'Authorization: Bearer s3cret' "
                    f"--save tok") == 0
        saved_text = (tmp_path / "run" / "runs" / "tok.json").read_text()
        assert "s3cret" not in saved_text and "REDACTED" not in saved_text
        saved = orjson.loads(saved_text)
        command = saved["meta"]["command"]
        assert "'Authorization: ${TRADE_OPS_HEADER_AUTHORIZATION}'" in command, command
        assert saved["meta"]["command_env"] == {
            "TRADE_OPS_HEADER_AUTHORIZATION": "the Authorization header's value"}
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADE_OPS_HEADER_")}
        env["PYTHONPATH"] = str(ROOT)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
        unset = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60)
        assert unset.returncode == 2, unset.stdout + unset.stderr  # says what to set, sends nothing
        assert "TRADE_OPS_HEADER_AUTHORIZATION" in unset.stderr
        env["TRADE_OPS_HEADER_AUTHORIZATION"] = "Bearer s3cret"
        ran = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stdout + ran.stderr  # as printed: the app answered 200s
        rerun = orjson.loads((tmp_path / "run" / "runs" / "tok.json").read_bytes())
        assert rerun["results"]["ok"] == 20 and rerun["meta"]["command"] == command
        # the report says where the token comes from
        assert _run("trade-ops report perf tok tok --out out/PERF.md --force") == 0
        assert "read the Authorization header's value from `TRADE_OPS_HEADER_AUTHORIZATION`" in \
            (tmp_path / "out" / "PERF.md").read_text()
    finally:
        app_proc.stop()
