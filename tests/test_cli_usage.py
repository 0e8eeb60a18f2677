"""Every usage error is exit 2 with one line and a hint, never a traceback (issue 16, item 2).

Each command is fed out-of-range, malformed and conflicting values: ports, offsets, rates,
durations, SLOs, scenario files, stack files. Nothing here needs a server: every one of
these must be refused before anything is started or contacted (bench targets port 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trade_ops.cli import app

pytestmark = pytest.mark.unit

NOWHERE = "http://127.0.0.1:1"  # nothing listens: a bench that got this far would exit 3

FILES = {
    "port-minus-one.toml": "[services.risk]\nport = -1\n",
    "port-too-big.toml": "[infra.valkey]\nport = 70000\n",
    "port-word.toml": '[services.risk]\nport = "eighty"\n',
    "not-toml.toml": "this is = = not toml\n",
    "cycle.toml": '[services.risk]\ndepends_on = ["oms"]\n',
    "negative-rate.toml": "rate = -5.0\n",
    "zero-duration.toml": "duration_s = 0\n",
    "unknown-key.toml": "speed = 3\n",
    # issue 26: each was a traceback and exit 1 (`enabled = "no"` counted as enabled)
    "services-number.toml": "services = 5\n",
    "service-number.toml": "[services]\noms = 5\n",
    "env-number.toml": "[services.oms]\nenv = 5\n",
    "infra-list.toml": "infra = []\n",
    "defaults-string.toml": 'defaults = "x"\n',
    "enabled-no.toml": '[services.oms]\nenabled = "no"\n',
}
MALFORMED_STACKS = ["services-number", "service-number", "env-number", "infra-list", "defaults-string",
                    "enabled-no"]

CASES: list[list[str]] = [
    # up: offsets, ports, stack files, names, timeouts
    ["up", "--port-offset", "60000", "--only", "risk"],
    ["up", "--port-offset", "-9000", "--only", "valkey"],
    ["up", "--port-offset", "ten"],
    ["up", "--stack", "{port-minus-one.toml}"],
    ["up", "--stack", "{port-too-big.toml}"],
    ["up", "--stack", "{port-word.toml}"],
    ["up", "--stack", "{not-toml.toml}"],
    ["up", "--stack", "{cycle.toml}"],
    ["up", "--stack", "{missing.toml}"],
    *(["up", "--stack", f"{{{name}.toml}}"] for name in MALFORMED_STACKS),
    ["up", "--stack", "/dev/zero"],
    ["up", "--only", ","],
    ["up", "--only", "risk,nope"],
    ["up", "--timeout", "0"],
    ["up", "--timeout", "soon"],
    # down, restart, ps, logs
    ["down", "--grace", "-1"],
    ["restart", "--grace", "-1"],
    ["restart", "--timeout", "0"],
    ["ps", "--no-such-flag"],
    ["logs", "-n", "-1"],
    ["logs", "--since", "the day before"],
    ["logs", "--since", "25:99"],
    ["logs", "--follow", "--json"],
    # doctor
    ["doctor", "--timeout", "0"],
    ["doctor", "--watch", "0.1"],
    ["doctor", "--url", "oms"],
    ["doctor", "--url", "nope=http://127.0.0.1:1"],
    ["doctor", "--json", "--watch", "1"],
    ["doctor", "--compose", "{missing.yaml}"],
    ["doctor", "--stack", "{port-minus-one.toml}"],
    # bench: rates, durations, counts, SLOs, scenario files, stack files, targets
    ["bench", "oms", "--url", NOWHERE, "--rate", "-5"],
    ["bench", "oms", "--url", NOWHERE, "--rate", "fast"],
    ["bench", "oms", "--url", NOWHERE, "--duration", "-1"],
    ["bench", "oms", "--url", NOWHERE, "-c", "0"],
    ["bench", "oms", "--url", NOWHERE, "-n", "-3"],
    ["bench", "oms", "--url", NOWHERE, "--timeout", "0"],
    ["bench", "oms", "--url", NOWHERE, "--max-lag", "-1"],  # 0 is allowed: any lag is too much
    ["bench", "oms", "--url", NOWHERE, "--warmup", "-1"],
    ["bench", "oms", "--url", NOWHERE, "--model", "sideways"],
    ["bench", "oms", "--url", NOWHERE, "--slo", "p99<<5"],
    ["bench", "oms", "--url", NOWHERE, "--slo", "p99<100"],
    ["bench", "oms", "--url", NOWHERE, "--scenario", "nope"],
    ["bench", "oms", "--url", NOWHERE, "--scenario", "{negative-rate.toml}"],
    ["bench", "oms", "--url", NOWHERE, "--scenario", "{zero-duration.toml}"],
    ["bench", "oms", "--url", NOWHERE, "--scenario", "{unknown-key.toml}"],
    ["bench", "oms", "--url", NOWHERE, "--scenario", "{not-toml.toml}"],
    ["bench", "oms", "--stack", "{port-minus-one.toml}"],
    ["bench", "http", "--url", NOWHERE, "-H", "no colon"],
    ["bench", "no-such-target"],
    # report
    ["report", "perf", "no-such-run", "other"],
    ["report", "perf", "a", "b", "--min-effect", "lots"],
]


@pytest.mark.parametrize("args", CASES, ids=[" ".join(c) for c in CASES])
def test_usage_error_is_exit_2_one_line_and_a_hint(args: list[str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)  # nothing here: no stack is found, no default port is touched
    argv = [str(tmp_path / a[1:-1]) if a.startswith("{") else a for a in args]
    result = CliRunner().invoke(app, [*argv, "--run-dir", str(tmp_path / "run")]
                                if args[0] not in ("report",) else argv,
                                env={"TRADE_OPS_RUN_DIR": None, "TRADE_OPS_STACK": None,
                                     "TRADE_OPS_PORT_OFFSET": None, "COLUMNS": "200"})
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    ours = [line for line in output.splitlines() if line.startswith("error:")]
    if ours:  # trade-ops' own message: one line, then the hint or the detail under it
        assert len(ours) == 1, output
        assert len(output.strip().splitlines()) >= 2, f"no hint under the message: {output}"
    else:  # a value click refused: its one-line message and "Try '... --help'"
        assert "--help" in output and "Error" in output, output
    assert not (tmp_path / "run").exists()  # nothing was started, no run dir was made


JSON_CASES: list[list[str]] = [
    ["bench", "oms", "--url", NOWHERE, "--rate", "fast", "--json"],  # a value click cannot parse
    ["bench", "oms", "--json", "--no-such-flag"],  # a flag click does not know
    ["bench", "oms", "--url", NOWHERE, "-c", "0", "--json"],  # out of click's range
    ["report", "perf", "a", "b", "--json", "--no-such-flag"],  # a command of a sub-group
]


@pytest.mark.parametrize("args", JSON_CASES, ids=[" ".join(c) for c in JSON_CASES])
def test_usage_error_found_by_click_with_json_is_one_json_document(args: list[str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`--json` prints one JSON document on stdout in every outcome: click's own usage errors too."""
    import json

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args, env={"TRADE_OPS_RUN_DIR": str(tmp_path / "run"), "COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)  # the whole of stdout is the one document
    assert doc["status"] == "error" and doc["exit_code"] == 2, doc
    assert doc["message"] and f"{' '.join(args[:2 if args[0] == 'report' else 1])} --help" in doc["detail"]
    assert "Error" in result.stderr  # click's own message stays on stderr


@pytest.mark.parametrize("stack", [*(f"{n}.toml" for n in MALFORMED_STACKS), "/dev/zero"])
def test_a_malformed_stack_file_under_json_is_one_json_document(stack: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """They printed nothing on stdout under --json (a traceback on stderr, exit 1)."""
    import json

    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    path = stack if stack.startswith("/") else str(tmp_path / stack)
    result = CliRunner().invoke(app, ["doctor", "--stack", path, "--json", "--no-trade"],
                                env={"TRADE_OPS_RUN_DIR": str(tmp_path / "run"), "COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "error" and doc["exit_code"] == 2 and "\n" not in doc["message"], doc
