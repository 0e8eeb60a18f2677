"""Fixtures that start the real infrastructure on free ports and stop it afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI runs the Docker tests: {exc} (.ci/run starts one with setup-docker.sh)")
        pytest.skip(f"no Docker engine reachable ({exc}); run ../shared/docker/setup-docker.sh")
