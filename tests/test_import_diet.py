"""What `trade-ops --help` and `trade-ops doctor` import, in a fresh interpreter (issue 23's
Measure: doctor within a second, a third of which was the interpreter's start and imports).

Each library below is heavy to import and none is needed on these paths: bench's and the
report's (numpy, scipy, matplotlib, hdrh), the lake's (deltalake, pyarrow), the services'
(FastAPI, uvicorn, redis), Docker's SDK and compose's YAML (only for a Docker deployment),
and the writers of --junit / --metrics (prometheus_client, xml). A module-level import of
one of them anywhere on the path fails here instead of slowing every run silently.

A fresh interpreter is a process (tests/conftest.py: the process tier), though it starts no
server: the doctor run probes a port where nothing listens.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]

HEAVY = {"numpy", "scipy", "matplotlib", "pandas", "pyarrow", "deltalake", "hdrh", "docker", "fastapi",
         "starlette", "uvicorn", "redis", "yaml", "prometheus_client", "xml", "services.kit"}
# httpx's command-line client (what `import httpx` brings besides the client)
HTTPX_CLI = {"click", "pygments"}
# besides HEAVY, what the CLI's help needs none of: doctor's probes' libraries
NOT_FOR_HELP = HEAVY | {"httpx", "nats", "psutil", "trade_ops.doctor.runner"}
# nor the root help trade-ops' version (importlib.metadata), nor typer's parameter coercion
# (pydantic, which typer imports to parse a command's options)
NOT_FOR_ROOT_HELP = NOT_FOR_HELP | {"importlib.metadata", "pydantic"}

# Runs the CLI as the console script does, then prints what was imported: at exit, so that
# what a command imports inside its functions, as it runs, is counted too.
PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write(
    "MODULES " + " ".join(sorted(name for name, m in sys.modules.items() if m is not None)) + "\\n"))
sys.argv = ["trade-ops", *sys.argv[1:]]
from trade_ops.cli import main
main()
"""


def _imported(args: list[str], cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(cwd),
           "TRADE_OPS_RUN_DIR": str(cwd / "run"),
           **{k: v for k, v in os.environ.items() if k == "PYTHONDONTWRITEBYTECODE"}}
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=cwd,
                         timeout=60, env=env)
    line = next((x for x in out.stderr.splitlines() if x.startswith("MODULES ")), "")
    assert line, out.stderr
    return set(line.split()[1:]), out


def _loaded(modules: set[str], names: set[str]) -> list[str]:
    """The names (packages or modules) of which something was imported."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.mark.parametrize(("args", "unwanted"), [(["--help"], NOT_FOR_ROOT_HELP),
                                                 (["doctor", "--help"], NOT_FOR_HELP)])
def test_help_imports_no_library_of_any_command(args: list[str], unwanted: set[str], tmp_path: Path) -> None:
    modules, out = _imported(args, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "doctor" in out.stdout
    assert _loaded(modules, unwanted) == []


def test_a_doctor_run_imports_only_what_doctor_uses(tmp_path: Path) -> None:
    # A real run, every probe of a named service, from a directory without compose.yaml (no
    # Docker deployment to read): its checks' modules are all imported by the time it ends.
    modules, out = _imported(["doctor", "--url", "oms=http://127.0.0.1:1", "--timeout", "0.2",
                              "--no-report", "--json"], tmp_path)
    assert out.returncode == 3, out.stderr  # nothing answered: could not run
    assert '"status"' in out.stdout
    assert {"httpx", "trade_ops.doctor.runner", "trade_ops.doctor.check_services"} <= modules
    assert _loaded(modules, HEAVY | HTTPX_CLI) == []


def test_httpx_is_used_without_its_command_line_client() -> None:
    # trade_ops/__init__.py marks httpx._main absent: needed while httpx imports it eagerly (when
    # it no longer does, remove the mark), and safe while httpx takes its absence (a stub `main`).
    show = ("import sys, httpx; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'click', 'pygments'}), "
            "httpx.main.__module__, httpx.AsyncClient.__name__)")
    assert _python(show) == "['click', 'pygments'] httpx AsyncClient"
    assert _python("import trade_ops; " + show) == "[] httpx AsyncClient"


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          timeout=60).stdout.strip()
