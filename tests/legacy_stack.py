"""Start the legacy fixture stack (tests/apps/legacy.py): one uvicorn process per role."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.apps.stacks import ROOT
from tests.helpers import Proc, _on_a_free_port, _spawn, _started
from trade_ops import infra

__all__ = ["ROLES", "start_legacy", "stop_all"]

ROLES = ("gateway", "risk", "oms", "exeq", "live-gateway", "event-writer", "ptrc", "hot-cache")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5):
            return True
    except urllib.error.HTTPError:
        return True  # a 503 is an answer: the legacy event-writer is up and unhealthy
    except OSError:
        return False


def _start(role: str, workdir: Path, nats_url: str | None) -> Proc:
    def once() -> Proc:
        port = infra.free_port()
        log = workdir / f"legacy-{role}-{port}.log"
        env = {"LEGACY_ROLE": role, **({"LEGACY_NATS": nats_url} if nats_url else {})}
        cmd = [sys.executable, "-m", "uvicorn", "tests.apps.legacy:app", "--app-dir", str(ROOT),
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        proc = Proc(_spawn(cmd, log, env), port, log, f"http://127.0.0.1:{port}")
        return _started(proc, lambda: _answers(proc.url + "/health"), f"legacy {role}")

    return _on_a_free_port(once)


def stop_all(procs: dict[str, Proc]) -> None:
    for proc in procs.values():
        proc.stop()


def start_legacy(workdir: Path, nats_url: str | None = None,
                 roles: tuple[str, ...] = ROLES) -> dict[str, Proc]:
    procs: dict[str, Proc] = {}
    try:
        for role in roles:
            procs[role] = _start(role, workdir, nats_url)
    except BaseException:
        stop_all(procs)
        raise
    return procs
