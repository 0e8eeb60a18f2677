"""Start real processes for tests: valkey-server, nats-server, and service processes.

Like locust's TestProcess: start the real program, wait until it is ready, stop it at
the end and make sure nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import nats
import nats.errors
import orjson
import pytest
from typer.testing import CliRunner

from services import provision as topology
from trade_ops import infra
from trade_ops.cli import app

__all__ = ["CLEAN_ENV", "CLI", "ROOT", "Proc", "cli_env", "cli_json", "cli_process", "interrupt",
           "json_object", "missing_here", "remake_durables", "request_as", "start_delay_app", "start_nats",
           "start_service", "start_valkey", "wait_until"]

ROOT = Path(__file__).resolve().parents[1]
# For the CLI a test invokes: nothing points it at the caller's stack, offset or run directory.
CLEAN_ENV: dict[str, str | None] = {"TRADE_OPS_RUN_DIR": None, "TRADE_OPS_STACK": None,
                                    "TRADE_OPS_PORT_OFFSET": None}
# trade-ops as a process of its own, on this checkout's code (with cli_env) whatever is installed
CLI = [sys.executable, "-c", "from trade_ops.cli import main; main()"]


def json_object(data: bytes | str | None) -> dict[str, Any]:
    """A JSON document that must be an object (a body, a message, a stored entry), typed as one."""
    assert data is not None, "no document"
    doc = orjson.loads(data)
    assert isinstance(doc, dict), f"not a JSON object: {doc!r}"
    return doc


def cli_json(*argv: str, env: Mapping[str, str | None] | None = None) -> tuple[int, dict[str, Any]]:
    """`trade-ops ARGV` run in this process: its exit code and the one JSON document on stdout."""
    result = CliRunner().invoke(app, list(argv), env=env, catch_exceptions=False)
    return result.exit_code, json_object(result.stdout)


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment for a CLI process: this checkout's code first, `extra` added."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


@contextlib.contextmanager
def cli_process(args: list[str], env: dict[str, str] | None = None,
                cwd: Path | None = None) -> Iterator[subprocess.Popen[str]]:
    """`trade-ops ARGS` as a process of its own (text pipes), killed if it still runs when the
    block ends."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env() if env is None else env, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=5)


def interrupt(args: list[str], ready: str, *, on_stderr: bool = False, after_s: float = 0.3,
              env: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, str, str]:
    """Ctrl-C for `trade-ops ARGS`: SIGINT `after_s` after it printed a line with `ready` (on
    stdout, or on stderr); its exit code, stdout and stderr (the lines read before included)."""
    with cli_process(args, env) as proc:
        pipe = proc.stderr if on_stderr else proc.stdout
        assert pipe is not None
        seen = ""
        deadline = time.monotonic() + timeout
        while ready not in seen and time.monotonic() < deadline:
            line = pipe.readline()
            if not line:  # it ended
                break
            seen += line
        assert ready in seen, seen
        time.sleep(after_s)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out if on_stderr else seen + out, seen + err if on_stderr else err


def missing_here(what: str) -> NoReturn:
    """This machine lacks what the test needs (a Docker engine, root for namespaces, an
    address): skipped here, failed in CI (CI=true, as .ci/run and GitHub Actions set it),
    which must have it: nothing CI is meant to run is skipped there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI runs this test and lacks what it needs: {what}")
    pytest.skip(what)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    url: str = ""

    def stop(self, grace: float = 3.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)


def _started(proc: Proc, ready: Callable[[], bool], what: str, timeout: float = 10.0) -> Proc:
    if not wait_until(lambda: proc.popen.poll() is not None or ready(), timeout) or not ready():
        proc.stop()
        raise RuntimeError(f"{what} did not start:\n{proc.log_text()[-3000:]}")
    return proc


def _on_a_free_port(start: Callable[[], Proc]) -> Proc:
    """free_port() is a guess: between choosing a port and the server binding it, another
    socket (an outgoing connection's ephemeral port) can take it. Then choose again."""
    for attempt in range(3):
        try:
            return start()
        except RuntimeError as exc:
            if "address already in use" not in str(exc).lower() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def start_valkey(workdir: Path, config: Path | None = None) -> Proc:
    """`config`: a valkey.conf with ACL users (credentials.write_valkey_config)."""

    def once() -> Proc:
        port = infra.free_port()
        data = workdir / f"valkey-{port}"
        data.mkdir(parents=True, exist_ok=True)
        log = workdir / f"valkey-{port}.log"
        proc = Proc(_spawn(infra.valkey_command(port, data, config=config), log), port, log,
                    f"redis://127.0.0.1:{port}/0")
        return _started(proc, lambda: infra.valkey_ready("127.0.0.1", port), "valkey")

    return _on_a_free_port(once)


def start_nats(workdir: Path, config: Path | None = None, provision: bool = True,
               system: tuple[str, str] | None = None, monitor: bool = True) -> Proc:
    """`config`: a nats.conf with users and permissions (credentials.write_nats_config); its
    caller makes the topology as its operator user. Without one, the operator's topology
    (every stream and durable, services/provision.py) is made here, as `up` makes it,
    unless `provision` is false (a NATS of another deployment, e.g. the legacy one).
    `system`: the config's system-account (user, password), asked whether it is ready as
    `up` asks; `monitor=False` opens no HTTP monitoring port (as `up` starts its own)."""
    from trade_ops import nats_system

    def once() -> Proc:
        port, mport = infra.free_port(), infra.free_port() if monitor else None
        log = workdir / f"nats-{port}.log"
        command = infra.nats_command(port, mport, workdir / f"nats-{port}", config=config)
        proc = Proc(_spawn(command, log), port, log, f"nats://127.0.0.1:{port}")
        if system is not None:
            login = nats_system.SystemLogin(proc.url, *system)
            return _started(proc, lambda: nats_system.healthy(login), "nats")
        return _started(proc, lambda: infra.nats_ready(f"http://127.0.0.1:{mport}"), "nats")

    proc = _on_a_free_port(once)
    if config is None and provision:
        asyncio.run(topology.provision_url(proc.url))
    return proc


def remake_durables(nats_url: str, service: str, **changes: Any) -> None:
    """The operator makes `service`'s durables again with `changes` (e.g. a short
    ack_wait_s, so a test sees a redelivery soon), as `up` would from such a contract."""
    from dataclasses import replace

    from services import contract

    async def run() -> None:
        nc = await nats.connect(nats_url)
        try:
            for durable in contract.TOPOLOGY[service].durables:
                await topology.ensure_durable(nc.jetstream(), service, replace(durable, **changes))
        finally:
            await nc.close()

    asyncio.run(run())


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_delay_app(workdir: Path, **settings: str) -> Proc:
    """tests/apps/delay.py (POST /check) on a free port; `settings`: its DELAY_MS, BUSY_MS, TOKEN."""

    def once() -> Proc:
        port = infra.free_port()
        cmd = [sys.executable, "-m", "uvicorn", "tests.apps.delay:app", "--app-dir", str(ROOT),
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
        log = workdir / f"delay-{port}.log"
        proc = Proc(_spawn(cmd, log, settings), port, log, f"http://127.0.0.1:{port}")
        return _started(proc, lambda: _http_ok(proc.url + "/livez"), "the delay app")

    return _on_a_free_port(once)


def start_service(name: str, workdir: Path, env: dict[str, str], timeout: float = 20.0) -> Proc:
    """`python -m services NAME` on a free port, with the given TRADE_OPS_* environment."""

    def once() -> Proc:
        port = infra.free_port()
        log = workdir / f"{name}-{port}.log"
        full_env = {"TRADE_OPS_SERVICE": name, "TRADE_OPS_PORT": str(port),
                    "TRADE_OPS_RUN_DIR": str(workdir), **env}
        proc = Proc(_spawn([sys.executable, "-m", "services", name], log, full_env), port, log,
                    f"http://127.0.0.1:{port}")
        return _started(proc, lambda: _http_ok(proc.url + "/livez"), name, timeout)

    return _on_a_free_port(once)


async def request_as(url: str, user: str, password: str, subject: str) -> tuple[bytes | None, list[str]]:
    """A NATS request as `user` (its inbox as a service has it): the reply, or None, and the
    errors the server sent (a permissions violation arrives on its own, not as the reply)."""
    from services import contract

    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, user=user, password=password, error_cb=on_error, allow_reconnect=False,
                            inbox_prefix=contract.inbox_prefix(user))
    try:
        return (await nc.request(subject, b"{}", timeout=0.5)).data, errors
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        await asyncio.sleep(0.1)
        return None, errors
    finally:
        await nc.close()
