"""Fixtures that start the real infrastructure on free ports and stop it afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Proc, start_nats, start_valkey


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


@pytest.fixture
def run_dirs() -> Iterator[list[Path]]:
    """Run directories for the test; whatever runs from them is stopped, and checked gone."""
    from tests.apps.stacks import gone
    from trade_ops import supervisor
    from trade_ops.rundir import RunDir

    paths: list[Path] = []
    yield paths
    for path in paths:
        rd = RunDir(path)
        recs = rd.load_state().processes.values() if rd.has_state() else []
        supervisor.down(rd, grace=2.0)
        assert all(gone(r.pid) for r in recs)
