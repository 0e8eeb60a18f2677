"""One set of edges for every command (issue 24, item 7): no stack is exit 3 everywhere, every
--json output is one object with `status` and `exit_code`, Ctrl-C is 130 wherever a command
was interrupted, a reader that closes stdout ends the command quietly with 0, a pipe gets
whole lines, and reports and runs go to the run directory, never to the current directory.

The commands run as real processes where the edge is the process's own (signals, pipes,
terminal width); nothing here needs a stack.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import CLEAN_ENV, CLI, cli_env, interrupt
from tests.report_synth import save_run
from trade_ops.cli import app

pytestmark = pytest.mark.process



def _env() -> dict[str, str]:
    """No stack, offset or run directory of the caller's, and no terminal width."""
    return {k: v for k, v in cli_env().items() if k not in CLEAN_ENV and k != "COLUMNS"}


def _split(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=CLEAN_ENV, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _logs(run_dir: Path, lines: int = 400) -> Path:
    """A run directory holding one process's log (no stack runs from it)."""
    logs = run_dir / "logs"
    logs.mkdir(parents=True)
    text = "".join(f"2026-12-05T16:00:{i % 60:02d}.{i:03d} INFO line {i} " + "x" * 300 + "\n"
                   for i in range(lines))
    (logs / "svc.log").write_text(text)
    return run_dir


def test_chaos_without_a_stack_exits_3_like_doctor_and_bench(tmp_path: Path) -> None:
    rd = str(tmp_path / "nothing")
    for args in (["chaos", "--fault", "burst"], ["doctor", "--no-report"], ["bench", "oms", "-n", "5"]):
        code, stdout, stderr = _split(*args, "--run-dir", rd, "--json")
        doc = json.loads(stdout)
        assert code == 3 and doc["status"] == "error" and doc["exit_code"] == 3, (args, stdout, stderr)


def test_ps_and_logs_json_are_one_object_with_status_and_exit_code(tmp_path: Path) -> None:
    code, stdout, _ = _split("ps", "--json", "--run-dir", str(tmp_path / "none"))
    doc = json.loads(stdout)
    assert code == 0 and doc["status"] == "ok" and doc["exit_code"] == 0 and doc["processes"] == []
    rd = _logs(tmp_path / "run", lines=3)
    code, stdout, _ = _split("logs", "-n", "2", "--json", "--run-dir", str(rd))
    doc = json.loads(stdout)
    assert code == 0 and doc["status"] == "ok" and doc["exit_code"] == 0
    assert [ln["name"] for ln in doc["lines"]] == ["svc", "svc"] and "line 2" in doc["lines"][1]["text"]


def test_a_json_document_without_the_envelope_is_refused() -> None:
    from trade_ops import console

    with pytest.raises(TypeError):
        console.print_json([{"name": "oms"}])  # type: ignore[arg-type]
    assert console.envelope({"passed": False}, 1) == {"status": "fail", "exit_code": 1, "passed": False}
    assert console.envelope({"status": "warn"}, 0)["status"] == "warn"  # the command's own word stays


def test_ctrl_c_ends_logs_follow_with_130(tmp_path: Path) -> None:
    rd = _logs(tmp_path / "run", lines=5)
    code, out, err = interrupt(["logs", "svc", "-f", "-n", "5", "--run-dir", str(rd)], "line 4", env=_env())
    assert code == 130, out + err
    assert "Traceback" not in err


def test_ctrl_c_ends_doctor_watch_with_130(tmp_path: Path) -> None:
    code, out, err = interrupt(["doctor", "--url", "oms=http://127.0.0.1:1", "--watch", "1",
                                "--no-report", "--run-dir", str(tmp_path / "run")], "oms", env=_env())
    assert code == 130, out + err
    assert "Traceback" not in err


def test_a_closed_stdout_ends_quietly_with_0(tmp_path: Path) -> None:
    """`trade-ops logs -n 200 | head -1`: more than a pipe holds, and the reader leaves."""
    rd = _logs(tmp_path / "run")
    proc = subprocess.Popen([*CLI, "logs", "-n", "400", "--run-dir", str(rd)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env())
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 0 and b"line 0" in first
    assert err == ""


def test_a_pipe_gets_whole_lines_not_80_columns(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for name, ms in (("before", 10.0), ("after", 20.0)):
        save_run(runs, name, median_ms=ms, seed=int(ms), intervals=10, per_interval=100)
    ran = subprocess.run([*CLI, "report", "perf", "before", "after", "--runs-dir", str(runs),
                          "--out", str(tmp_path / "out" / "PERF.md")],
                         capture_output=True, text=True, env=_env(), timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = [ln for ln in ran.stdout.splitlines() if "Mann-Whitney" in ln or "not enough data" in ln]
    assert len(rows) == 8, ran.stdout  # one line per metric, however long
    assert max(len(ln) for ln in rows) > 80


def test_reports_and_runs_go_to_the_run_directory(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`cd services/oms && trade-ops doctor` made services/oms/reports/; then `report perf`
    found no run. Both now use the run directory found above."""
    project = tmp_path / "project"
    rd = project / ".trade-ops"
    rd.mkdir(parents=True)
    deeper = project / "services" / "oms"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)
    for name, ms in (("base", 10.0), ("head", 10.0)):
        save_run(rd / "runs", name, median_ms=ms, seed=int(ms) + len(name), intervals=10, per_interval=100)
    code, _, stderr = _split("doctor", "--url", "oms=http://127.0.0.1:1")
    assert code == 3, stderr  # nothing reachable; the report says so all the same
    code, stdout, stderr = _split("report", "perf", "base", "head")
    assert code == 0, stdout + stderr
    assert (rd / "reports" / "STATUS_REPORT.md").is_file()
    assert (rd / "reports" / "PERFORMANCE_REPORT.md").is_file()
    assert list(deeper.iterdir()) == [] and not (project / "reports").exists()
