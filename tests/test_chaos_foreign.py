"""chaos on a stack trade-ops did not start (issue 24, item 8): a fault acts where the stack
file says its component runs (a pid, a container, a compose service), or the command names
the faults possible there and exits 2 before a single order is sent.

`chaos --allow-foreign --fault 'service-kill exeq'` said "exeq is not running from
.../.trade-ops" (exit 2): it looked for exeq only among the processes trade-ops started.
Real processes and a real container; no stack.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from tests.helpers import CLEAN_ENV, wait_until
from trade_ops.chaos.faults import parse_faults
from trade_ops.chaos.foreign import check_faults
from trade_ops.chaos.inject import Injector
from trade_ops.cli import app
from trade_ops.errors import UsageError
from trade_ops.rundir import RunDir
from trade_ops.stack import load_stack

pytestmark = pytest.mark.process

IMAGE = "local/debian-python:bookworm"  # the base image the Docker runtime builds on, already here


@pytest.fixture
def oms() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server standing in for a foreign OMS: it records every request."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(5)


def _stack(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.toml"
    path.write_text(text)
    return path


def test_a_fault_that_cannot_act_names_the_possible_ones_and_sends_nothing(
        tmp_path: Path, oms: tuple[str, list[str]], sleeper: int) -> None:
    url, seen = oms
    stack = _stack(tmp_path, f'[services.oms]\nurl = "{url}"\n[services.risk]\npid = {sleeper}\n')
    result = CliRunner().invoke(app, ["chaos", "--allow-foreign", "--fault", "service-kill exeq", "--stack",
                                      str(stack), "--run-dir", str(tmp_path / "run"), "--duration", "2"],
                                env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "fault service-kill exeq@2+2 cannot act here" in text and "does not say how it runs" in text
    assert f"possible here: burst, 'service-stop risk' (pid {sleeper})" in text, text
    assert not [s for s in seen if s.startswith("POST")], seen  # no order was sent
    with pytest.raises(UsageError, match="can stop and resume but not start again"):
        check_faults(parse_faults(["service-kill risk"], ["risk"]), load_stack(stack), set(), tmp_path)


def test_a_stop_acts_on_the_pid_the_stack_file_gives(tmp_path: Path, sleeper: int) -> None:
    stack = load_stack(_stack(tmp_path, f"[services.exeq]\npid = {sleeper}\n"))
    check_faults(parse_faults(["service-stop exeq"], ["exeq"]), stack, set(), tmp_path)  # accepted
    injector = Injector(RunDir(tmp_path / "run"), stack, ours=set())
    injector.pause("exeq")
    assert wait_until(lambda: psutil.Process(sleeper).status() == psutil.STATUS_STOPPED, timeout=5)
    injector.resume("exeq")
    assert wait_until(lambda: psutil.Process(sleeper).status() != psutil.STATUS_STOPPED, timeout=5)


@pytest.fixture
def container(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real container, labelled as compose labels the service `exeq` of tmp_path/compose.yaml."""
    import docker

    client = docker.from_env()
    name = f"trade-ops-test-{uuid.uuid4().hex[:8]}"
    labels = {"com.docker.compose.service": "exeq",
              "com.docker.compose.project.working_dir": str(tmp_path.resolve())}
    made = client.containers.run(IMAGE, ["sleep", "300"], name=name, detach=True, labels=labels, init=True)
    try:
        yield name, tmp_path / "compose.yaml"
    finally:
        made.remove(force=True)


@pytest.mark.parametrize("how", ["container", "compose"])
def test_kill_start_stop_resume_act_on_the_container_the_stack_file_names(
        tmp_path: Path, container: tuple[str, Path], how: str) -> None:
    import docker

    name, compose = container
    entry = f'container = "{name}"' if how == "container" else \
        f'compose_file = "{compose}"\ncompose_service = "exeq"'
    stack = load_stack(_stack(tmp_path, f"[services.exeq]\n{entry}\n"))
    check_faults(parse_faults(["service-kill exeq", "service-stop exeq"], ["exeq"]), stack, set(), tmp_path)
    injector = Injector(RunDir(tmp_path / "run"), stack, ours=set())

    def status() -> str:
        return str(docker.from_env().containers.get(name).status)

    injector.kill("exeq")
    assert status() == "exited"
    assert injector.start("exeq", timeout=30) is None and status() == "running"
    injector.pause("exeq")
    assert status() == "paused"
    injector.resume("exeq")
    assert status() == "running"
