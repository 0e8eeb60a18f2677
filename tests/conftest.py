"""Fixtures that start the real infrastructure on free ports and stop it afterwards, and the
tiers (pyproject.toml's markers): a test module says what it starts with `pytestmark`."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Proc, missing_here, start_nats, start_valkey
from trade_ops.rundir import RunDir

# Ctrl-C tests send SIGINT to the CLI they start. A shell that runs a job in the background
# without job control (`.ci/run &`, nohup) starts it with SIGINT ignored, an ignored signal
# stays ignored across exec, and Python then installs no KeyboardInterrupt: every Ctrl-C test
# would fail there. A handler here is reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TIERS = ("unit", "process", "stack", "docker")
# what starts a server process: a unit test may use none of these
SERVER_FIXTURES = {"valkey_server", "nats_server", "fresh_valkey", "fresh_nats", "run_dirs", "stack_run",
                   "null_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # a module that says nothing runs with the servers, never in the fast tier
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.process)


@pytest.fixture(autouse=True)
def _unit_tests_start_nothing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that starts a process (or asks for a server fixture) fails and says so:
    its module belongs to the process tier."""
    if request.node.get_closest_marker("unit") is None:
        return
    used = SERVER_FIXTURES & set(request.fixturenames)
    assert not used, f"a unit test uses {sorted(used)}: mark its module pytest.mark.process"

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a unit test started a process ({args!r}): mark its module "
                             "pytest.mark.process")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture
def tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test runs in its tmp_path, its run directory there too (TRADE_OPS_RUN_DIR): a CLI
    command it invokes reads and writes nothing of the checkout's. A module opts in with
    `pytest.mark.usefixtures("tmp_cwd")` in its pytestmark."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADE_OPS_RUN_DIR", str(tmp_path / "run"))
    return tmp_path


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """No wrapping at 80 columns, so a CLI message invoked in process can be matched whole.
    A module opts in with `pytest.mark.usefixtures("wide_console")`."""
    from trade_ops import console

    for con in {console.console, console.err_console}:
        monkeypatch.setattr(con, "_width", 1000)


@pytest.fixture(scope="module")
def null_url() -> Iterator[str]:
    """bench's null endpoint (a child process), one for the module."""
    from trade_ops.bench.null_server import NullServer

    with NullServer() as url:
        yield url


@pytest.fixture(scope="session")
def infra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def valkey_server(infra_dir: Path) -> Iterator[Proc]:
    """One real valkey-server for the session; tests use their own keys or flush."""
    proc = start_valkey(infra_dir)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def nats_server(infra_dir: Path) -> Iterator[Proc]:
    """One real nats-server with JetStream for the session."""
    proc = start_nats(infra_dir)
    yield proc
    proc.stop()


@pytest.fixture
def fresh_valkey(tmp_path: Path) -> Iterator[Proc]:
    """A valkey-server of the test's own, for tests that stop or restart it."""
    proc = start_valkey(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[Proc]:
    """A nats-server of the test's own, for tests that need empty streams or stop it."""
    proc = start_nats(tmp_path)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def stack_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunDir]:
    """The module's SERVICES (a dict of tiny test services, see tests/apps/stacks.py) started
    by the supervisor once for the module, at free ports; stopped after, every process gone."""
    from tests.apps.stacks import free_offset, started, write_stack
    from trade_ops.stack import load_stack

    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    path = write_stack(tmp / "stack.toml", request.module.SERVICES)
    rd = RunDir(tmp / "run")
    with started(rd, load_stack(path, offset=free_offset(path))):
        yield rd


@pytest.fixture
def run_dirs() -> Iterator[list[Path]]:
    """Run directories for the test; whatever runs from them is stopped, and checked gone."""
    from tests.apps.stacks import gone
    from trade_ops.rundir import RunDir
    from trade_ops.runtime import supervisor

    paths: list[Path] = []
    yield paths
    for path in paths:
        rd = RunDir(path)
        recs = rd.load_state().processes.values() if rd.has_state() else []
        supervisor.down(rd, grace=2.0)
        assert all(gone(r.pid) for r in recs)


@pytest.fixture(scope="session")
def docker_engine() -> Any:
    """The real Docker engine. Outside CI a test needing one skips when none is reachable;
    in CI (CI=true) it fails instead: CI runs the Docker tests (.ci/run starts an engine)."""
    from trade_ops.runtime.docker import connect

    try:
        return connect(timeout=5)
    except Exception as exc:
        missing_here(f"no Docker engine reachable ({exc}); start one with .ci/setup-docker.sh")
