"""The stack on a real Docker engine: `up --runtime docker`, compose.yaml, doctor on containers.

The service image is built once for the module (on the local base image the CI set-up
makes: no registry is reachable, so valkey and nats run from the service image). Every
container, network and volume a test creates, it removes. Outside CI these tests skip
when no engine answers; in CI (CI=true) a missing engine is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import httpx
import pytest
import redis
import yaml
from typer.testing import CliRunner

from tests import helpers
from tests.apps.stacks import ROOT, free_offset
from tests.helpers import wait_until
from trade_ops import compose, compose_secrets, credentials, nats_system
from trade_ops.cli import app
from trade_ops.context import Context
from trade_ops.credentials import operator_headers, valkey_login
from trade_ops.doctor import build_target
from trade_ops.doctor.check_docker import check_containers
from trade_ops.doctor.model import CheckResult
from trade_ops.errors import ExitCode
from trade_ops.rundir import RunDir, StackState
from trade_ops.runtime.docker import connect, containers_of, project_name
from trade_ops.runtime.image import ImageBuildError, ensure_image
from trade_ops.stack import load_stack

pytestmark = [pytest.mark.docker, pytest.mark.timeout(400), pytest.mark.usefixtures("wide_console")]

BASE_IMAGE = os.environ.get("TRADE_OPS_TEST_BASE_IMAGE", "local/debian-python:bookworm")
CLEAN_ENV = {**helpers.CLEAN_ENV, "TRADE_OPS_RUNTIME": None, "TRADE_OPS_BASE_IMAGE": None}
OFFLINE = {"TRADE_OPS_VALKEY_IMAGE": compose.SERVICE_IMAGE, "TRADE_OPS_NATS_IMAGE": compose.SERVICE_IMAGE,
           "TRADE_OPS_BASE_IMAGE": BASE_IMAGE}


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def engine(docker_engine: Any) -> Any:
    return docker_engine


@pytest.fixture(scope="module")
def image(engine: Any) -> str:
    """The service image, built from this tree once (a no-op when it is up to date)."""
    ensure_image(engine, compose.SERVICE_IMAGE, BASE_IMAGE, lambda msg: None)
    return compose.SERVICE_IMAGE


def _compose(args: list[str], cwd: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "compose", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


def _doctor(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    # a generous probe timeout: the machine running the tests may be busy
    args = ("doctor", "--json", "--no-report", "--timeout", "5", *args)
    result = CliRunner().invoke(app, list(args), env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False)
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["exit_code"] == result.exit_code
    return doc


def _check(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["checks"] if c["name"] == name)


# -- up --runtime docker: one stack for the module (a start costs a minute or more) ---------------
def _remove_all(rd: RunDir, patience_s: float = 120.0) -> None:
    """Every container and the network of the run, whatever `down` left. dockerd may refuse
    the network for a while ("has active endpoints", see _stale_only; a CI run left one
    behind that `docker network rm` removed minutes later), so that is tried until it goes."""
    client = connect(timeout=300)
    for c in containers_of(client, rd):
        c.remove(force=True)
    deadline = time.monotonic() + patience_s
    while left := client.networks.list(names=[project_name(rd)]):
        for net in left:
            with contextlib.suppress(docker.errors.APIError):
                net.remove()
        if time.monotonic() > deadline:
            raise AssertionError(f"dockerd kept the network {project_name(rd)} for {patience_s:g} s")
        time.sleep(0.5)


def _stale_only(engine: Any, rd: RunDir) -> bool:
    """No network of the run is left but one dockerd refuses to remove for an endpoint of a
    container already gone ("has active endpoints" with no container attached: seen once with
    dockerd 20.10 after a container was killed and restarted by its policy)."""
    left = engine.networks.list(names=[project_name(rd)])
    for net in left:
        net.reload()
    return all(not net.attrs.get("Containers") for net in left)


@pytest.fixture(scope="module")
def docker_stack(tmp_path_factory: pytest.TempPathFactory, image: str,
                 engine: Any) -> Iterator[tuple[RunDir, int, str]]:
    """`up --runtime docker` with durability 'host' (the non-default: it must reach the
    containers); the run directory, the port offset and what `up` printed."""
    rd, offset = RunDir(tmp_path_factory.mktemp("docker") / "run"), free_offset(None)
    try:
        code, out = run("up", "--runtime", "docker", "--offline-images", "--base-image", BASE_IMAGE,
                        "--durability", "host", "--port-offset", str(offset), "--run-dir", str(rd.path),
                        "--timeout", "300")
        assert code == 0, out
        yield rd, offset, out
    finally:  # whatever happened (a busy engine may time out a call): no container, no network left
        with contextlib.suppress(Exception):
            run("down", "--run-dir", str(rd.path))
        _remove_all(rd)


@pytest.mark.timeout(600)  # a cold start of 16 containers on a busy 2-core machine takes minutes
def test_up_docker_fills_an_order_and_survives_a_kill(docker_stack: tuple[RunDir, int, str],
                                                      engine: Any) -> None:
    rd, offset, out = docker_stack
    assert "all 16 ready" in out
    rows = json.loads(run("ps", "--json", "--run-dir", str(rd.path))[1])["processes"]
    assert len(rows) == 16 and {r["state"] for r in rows} == {"ready"}, rows
    assert {r["name"]: r["port"] for r in rows}["oms"] == 8099 + offset
    # every container carries what the issue asks: init, a restart policy, a memory limit, labels
    for c in containers_of(engine, rd):
        host = c.attrs["HostConfig"]
        assert host["Init"] is True and host["RestartPolicy"]["Name"] == "unless-stopped", c.name
        assert host["Memory"] > 0 and c.labels[compose.LABEL_RUN_DIR] == str(rd.path)
        assert all(b["HostIp"] == "127.0.0.1" for bs in c.attrs["NetworkSettings"]["Ports"].values()
                   for b in bs or [])

    code, out = run("logs", "oms", "-n", "50", "--run-dir", str(rd.path))
    assert code == 0 and "Application startup complete" in out, out

    oms = f"http://127.0.0.1:{8099 + offset}"
    auth = operator_headers(rd.path)  # off loopback (in a container) account tokens are on
    order = httpx.post(f"{oms}/orders", json={"symbol": "BTCUSDT", "side": "buy", "quantity": 0.001,
                                              "order_type": "MARKET", "account": "docker-test"},
                       headers=auth, timeout=10)
    assert order.status_code == 201, order.text
    oid = order.json()["order_id"]
    assert wait_until(lambda: httpx.get(f"{oms}/orders/{oid}", headers=auth, timeout=5).json()["status"]
                      == "FILLED", timeout=20, interval=0.2)

    # bench works on it unchanged, CPU per request of each container's main process included
    result = CliRunner().invoke(app, ["bench", "oms", "-c", "1", "-n", "30", "--no-live", "--json",
                                      "--run-dir", str(rd.path)], env=CLEAN_ENV, catch_exceptions=False)
    bench = json.loads(result.stdout)
    assert bench["ok"] >= 30 and "oms" in bench["cpu"]["gross_ms_per_request"], bench

    # a crash: the container's main process killed from outside (docker kill would count as a stop)
    exeq = next(c for c in containers_of(engine, rd) if c.labels[compose.LABEL_SERVICE] == "exeq")
    os.kill(exeq.attrs["State"]["Pid"], 9)
    assert wait_until(lambda: exeq.reload() or exeq.attrs["RestartCount"] >= 1 or
                      exeq.attrs["State"]["ExitCode"] == 137, timeout=15, interval=0.1)
    doc = _doctor("--run-dir", str(rd.path))
    check = _check(doc, "container exeq")
    assert check["status"] in ("warn", "fail"), check
    assert "137" in " ".join(check["details"]) and "SIGKILL" in " ".join(check["details"]), check
    assert check["remedy"], check
    # durability 'host' and valkey's memory bound reached the containers, as the process runtime runs them
    valkey = _check(doc, "valkey")["data"]
    assert valkey["maxmemory_policy"] == "noeviction" and valkey["maxmemory"] == 512 << 20, valkey
    # the restart policy brings exeq back, and it serves again
    assert wait_until(lambda: exeq.reload() or exeq.status == "running", timeout=30, interval=0.2)
    assert wait_until(lambda: httpx.get(f"http://127.0.0.1:{8095 + offset}/livez").status_code == 200
                      if _answers(8095 + offset) else False, timeout=60, interval=0.3)


def test_durability_host_reaches_valkey_and_jetstream_in_containers(
        docker_stack: tuple[RunDir, int, str]) -> None:
    rd, offset, _ = docker_stack
    stack = load_stack(offset=offset)
    login = valkey_login(rd.path)
    assert login is not None
    r = redis.Redis(port=stack["valkey"].port or 0, username=login[0], password=login[1])
    try:
        assert r.config_get("appendfsync") == {"appendfsync": "always"}
        assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    finally:
        r.close()
    # NATS's monitoring, through the operator's system account: no monitoring port on the host
    system = credentials.system_login(rd.path, stack.nats_url())
    assert system is not None
    varz = asyncio.run(_system_read(system, "varz"))
    assert varz["jetstream"]["config"]["sync_always"] is True, varz["jetstream"]["config"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{8222 + offset}/varz", timeout=5)


async def _system_read(login: nats_system.SystemLogin, endpoint: str) -> dict[str, Any]:
    nc = await nats_system.connect(login, 5.0, "test")
    try:
        return await nats_system.read(nc, endpoint, {}, 5.0)
    finally:
        await nc.close()


def _follower(rd: RunDir, *services: str) -> subprocess.Popen[str]:
    """`trade-ops logs SVC... -f` as a user runs it (a follow never ends by itself)."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    cli = str(Path(sys.executable).with_name("trade-ops"))  # the console script beside this Python
    return subprocess.Popen([cli, "logs", *services, "-f", "-n", "1",
                             "--run-dir", str(rd.path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**env, "COLUMNS": "400"})


def test_restart_and_logs_of_several_containers_and_follow(docker_stack: tuple[RunDir, int, str]) -> None:
    rd, offset, _ = docker_stack
    code, out = run("logs", "oms", "risk", "-n", "40", "--run-dir", str(rd.path))
    assert code == 0 and "oms  | " in out and "risk | " in out, out  # interleaved, each line named
    doc = json.loads(run("logs", "oms", "risk", "--json", "-n", "40", "--run-dir", str(rd.path))[1])["lines"]
    times = [ln["time"] for ln in doc]
    assert times == sorted(times) and {ln["name"] for ln in doc} == {"oms", "risk"}

    follower = _follower(rd, "oms", "risk")
    try:
        time.sleep(3)  # the follower attaches (its own start takes a second or two)
        code, out = run("restart", "oms", "--run-dir", str(rd.path))
        assert code == 0 and "1 restarted and ready" in out, out
        assert _answers(8099 + offset)
        # the follow goes on across the restart: the new oms's start-up lines arrive
        seen: list[str] = []
        deadline = time.monotonic() + 60
        assert follower.stdout is not None
        os.set_blocking(follower.stdout.fileno(), False)
        while time.monotonic() < deadline and not any("oms" in s and "startup complete" in s for s in seen):
            seen += follower.stdout.readlines()
            time.sleep(0.2)
        assert any(s.startswith("oms") and "Application startup complete" in s for s in seen), seen[-20:]
    finally:
        follower.send_signal(signal.SIGINT)  # Ctrl-C is how a follow ends
        try:
            assert follower.wait(timeout=20) in (0, -signal.SIGINT, 130)
        finally:
            follower.kill()

    code, out = run("restart", "nope", "--run-dir", str(rd.path))
    assert code == ExitCode.USAGE and "no container for 'nope'" in out and "oms" in out, out


@pytest.mark.timeout(300)
def test_chaos_kills_the_oms_container_and_no_order_promise_breaks(
        docker_stack: tuple[RunDir, int, str]) -> None:
    rd, _, _ = docker_stack
    args = ["chaos", "--fault", "service-kill oms@4+1", "--rate", "50", "--duration", "15", "--settle", "90",
            "--json", "--run-dir", str(rd.path)]
    result = CliRunner().invoke(app, args, env=CLEAN_ENV, catch_exceptions=False)
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["passed"], json.dumps({k: doc[k] for k in doc if k != "health"})
    assert doc["lost"] == doc["traded_after_error"] == doc["duplicated"] == 0
    assert doc["acknowledged"] > 0 and doc["health"]["worst"]["oms"] == "down"  # it was down, and back
    (fault,) = doc["faults"]
    assert fault["notes"] == [] and fault["ended_s"] - fault["began_s"] >= 1.0, fault


def test_down_is_quick_and_leaves_nothing(docker_stack: tuple[RunDir, int, str], engine: Any) -> None:
    rd, _, _ = docker_stack
    started = time.monotonic()
    code, out = run("down", "--run-dir", str(rd.path))
    took = time.monotonic() - started
    assert code == 0 and "stopped 16" in out, out
    assert containers_of(engine, rd) == [], f"containers left after down ({took:.1f} s)"
    assert _stale_only(engine, rd), engine.networks.list(names=[project_name(rd)])


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- doctor on containers -----------------------------------------------------------------------
def _docker_run_dir(path: Path) -> RunDir:
    rd = RunDir(path)
    rd.ensure_writable()
    rd.save_state(StackState(runtime="docker", started_at=time.time()))
    return rd


async def _container_checks(rd: RunDir) -> list[CheckResult]:
    engine_result = CheckResult("docker", "processes")
    found = [engine_result]
    await check_containers(build_target(Context.resolve(rd.path), timeout=5), engine_result, found)
    return found[1:]


async def test_doctor_names_an_oom_kill(tmp_path: Path, engine: Any) -> None:
    rd = _docker_run_dir(tmp_path / "run")
    container = engine.containers.run(
        BASE_IMAGE, ["python3", "-c", "b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096])"],
        detach=True, mem_limit="32m", memswap_limit="32m", init=True,
        labels={compose.LABEL_RUN_DIR: str(rd.path), compose.LABEL_SERVICE: "pnl"})
    try:
        container.wait(timeout=60)
        (check,) = await _container_checks(rd)
        assert check.status == "fail" and check.data["oom_killed"] is True, check
        assert "OOMKilled" in check.details[0] and "32 MiB" in check.details[0], check.details
        assert check.component == "pnl" and "docker start" in (check.remedy or "")
    finally:
        connect(timeout=300).containers.get(container.id).remove(force=True)


async def test_doctor_names_a_container_that_exited_with_its_code(tmp_path: Path, engine: Any) -> None:
    rd = _docker_run_dir(tmp_path / "run")
    container = engine.containers.run(BASE_IMAGE, ["python3", "-c", "import sys; print('bye'); sys.exit(3)"],
                                      detach=True, labels={compose.LABEL_RUN_DIR: str(rd.path),
                                                           compose.LABEL_SERVICE: "risk"})
    try:
        container.wait(timeout=60)
        (check,) = await _container_checks(rd)
        assert check.status == "fail" and "exited with code 3" in check.details[0], check.details
        assert check.log_tail == ["bye"]
        # the remedy runs as printed, in sh (it said `docker start X; see docker logs ...`:
        # `see: command not found`), and starts the container again
        assert check.remedy == f"docker start {container.name}", check.remedy
        ran = subprocess.run(["sh", "-c", check.remedy], capture_output=True, text=True, timeout=30,
                             check=False)
        assert ran.returncode == 0, ran.stderr
        assert f"docker logs --tail 50 {container.name}" in check.details[0]
    finally:
        connect(timeout=300).containers.get(container.id).remove(force=True)


async def test_doctor_names_a_restart_loop_with_its_exit_codes(tmp_path: Path, engine: Any) -> None:
    rd = _docker_run_dir(tmp_path / "run")
    # a bounded loop: a run killed mid-test leaves no loop behind
    container = engine.containers.run(
        BASE_IMAGE, ["python3", "-c", "print('crash'); raise SystemExit(5)"], detach=True,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 6},
        labels={compose.LABEL_RUN_DIR: str(rd.path), compose.LABEL_SERVICE: "ptrc"})
    try:  # Docker restarts it after 0.1, 0.2, 0.4 s ...
        assert wait_until(lambda: container.reload() or container.attrs["RestartCount"] >= 3, timeout=30,
                          interval=0.2)
        (check,) = await _container_checks(rd)
        assert check.status == "fail" and "restart loop" in check.details[0], check.details
        assert "5" in check.details[0] and check.remedy == f"docker logs --tail 50 {container.name}"
        assert "crash" in check.log_tail
    finally:
        connect(timeout=300).containers.get(container.id).remove(force=True)


# -- compose.yaml on the engine ------------------------------------------------------------------
@pytest.fixture
def compose_dir(tmp_path: Path, image: str, engine: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding compose.yaml as committed, for `docker compose` to run from, and a
    project name of the test's own (two runs at once must not share one): compose and doctor
    both read COMPOSE_PROJECT_NAME."""
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    compose_secrets.write_files(tmp_path, load_stack())  # ./secrets, as the README says
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", f"trade-ops-test-{random.randrange(10**6)}")
    try:
        yield tmp_path
    finally:
        for name in ("compose.yaml", "hc.yaml"):
            if (tmp_path / name).is_file():
                _compose(["-f", name, "down", "-v", "-t", "1", "--remove-orphans"], tmp_path, timeout=300)


def test_compose_yaml_runs_healthy_and_doctor_passes(compose_dir: Path, tmp_path: Path) -> None:
    offset = free_offset(None)
    # Only the host side of the ports moves (to free ones): what runs is compose.yaml as committed.
    ports = {s.name: [f"127.0.0.1:{h}:{c}" for h, c in s.ports]
             for s in compose.container_specs(load_stack(offset=offset))}
    override = "\n".join(f"  {n}:\n    ports: !override {json.dumps(p)}" for n, p in ports.items())
    (compose_dir / "compose.override.yaml").write_text(f"services:\n{override}\n")
    done = _compose(["up", "--wait", "--wait-timeout", "150", "--pull", "never", "--no-build"], compose_dir,
                    OFFLINE, timeout=200)
    if done.returncode != 0:
        health = _compose(["ps", "-a", "--format", "{{.Name}} {{.Status}}"], compose_dir, OFFLINE).stdout
        logs = _compose(["logs", "--tail", "8"], compose_dir, OFFLINE).stdout
        pytest.fail(f"{done.stderr[-400:]}\n{health}\n{logs[-6000:]}")
    ps = _compose(["ps", "--format", "json"], compose_dir, OFFLINE)
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip()]
    assert len(rows) == 16 and {r["Health"] for r in rows} == {"healthy"}, rows
    assert len([r for r in rows if r["Service"] not in ("valkey", "nats")]) == 14

    doc = _doctor("--compose", str(compose_dir / "compose.yaml"), "--run-dir", str(tmp_path / "rd"),
                  env={"COMPOSE_PROJECT_NAME": os.environ["COMPOSE_PROJECT_NAME"]})
    assert doc["exit_code"] == 0, [(c["name"], c["details"]) for c in doc["checks"] if c["status"] == "fail"]
    containers = [c for c in doc["checks"] if c["name"].startswith("container ")]
    # 16 that run and the operator's one-shot that made the streams and durables, done
    assert len(containers) == 17 and all(c["status"] == "pass" for c in containers)
    assert _check(doc, "container topology")["summary"] == "completed (exit 0)"
    assert _check(doc, "oms")["data"]["port"] == 8099 + offset  # found from the containers


def test_a_wrong_healthcheck_port_is_named_not_the_service(compose_dir: Path, tmp_path: Path,
                                                           engine: Any) -> None:
    offset = free_offset(None)
    doc = compose.compose_document(load_stack(offset=offset))
    gateway, nats = doc["services"]["gateway"], doc["services"]["nats"]
    gateway["healthcheck"] = {**gateway["healthcheck"], "interval": "1s", "retries": 2, "start_period": "0s"}
    gateway["healthcheck"]["test"][-1] = "http://127.0.0.1:9/health"  # nothing listens on port 9
    del gateway["build"]
    topology = {k: v for k, v in doc["services"]["topology"].items() if k != "build"}  # makes the streams
    nats["image"] = compose.SERVICE_IMAGE
    (compose_dir / "hc.yaml").write_text(yaml.safe_dump(
        {"name": f"trade-ops-hc-{offset}",
         "services": {"nats": nats, "gateway": gateway, "topology": topology},
         "volumes": {"nats-data": {}, "trade-ops-data": {}}, "secrets": doc["secrets"],
         "configs": doc["configs"]}))  # nats's server file (monitoring on its own loopback)
    done = _compose(["-f", "hc.yaml", "up", "-d", "--pull", "never"], compose_dir, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    project = os.environ["COMPOSE_PROJECT_NAME"]
    name = f"{project}-gateway-1"
    assert wait_until(lambda: engine.containers.get(name).attrs["State"]["Health"]["Status"] == "unhealthy",
                      timeout=60, interval=0.5)
    assert wait_until(lambda: _answers(8080 + offset), timeout=120, interval=0.5)  # the service is up

    doc = _doctor("--compose", str(compose_dir / "hc.yaml"), "--run-dir", str(tmp_path / "rd"),
                  env={"COMPOSE_PROJECT_NAME": project})
    assert _check(doc, "gateway")["status"] == "pass", json.dumps(_check(doc, "gateway"))  # it answers
    hc = _check(doc, "docker healthcheck gateway")
    assert hc["status"] == "fail" and "healthcheck is wrong" in hc["details"][0], hc
    assert _check(doc, "container gateway")["status"] == "pass"
    causes = {c["name"]: c for c in doc["root_causes"]}
    assert "docker healthcheck gateway" in causes, doc["root_causes"]
    # compose's own healthcheck, read from the file, is the cause too: never the service's health
    assert all("healthcheck" in c["reason"] for c in doc["root_causes"]), doc["root_causes"]
    assert hc["remedy"].endswith(f"docker compose -f {compose_dir / 'hc.yaml'} -p {project} up -d gateway")


# -- bad input ----------------------------------------------------------------------------------
def test_no_engine_is_a_clear_message_and_exit_3(tmp_path: Path) -> None:
    code, out = run("up", "--runtime", "docker", "--run-dir", str(tmp_path / "run"),
                    env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert code == ExitCode.CANNOT_RUN, out
    assert "no Docker engine reachable at unix://" in out and "Traceback" not in out


def test_a_rebuild_removes_the_image_it_replaced(tmp_path: Path, engine: Any) -> None:
    tag = f"trade-ops-rebuild-{os.getpid()}:test"
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY pyproject.toml /p\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    try:
        assert ensure_image(engine, tag, BASE_IMAGE, lambda msg: None, root=tmp_path)
        first = engine.images.get(tag).id
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"  # changed\ndependencies = []\n')
        assert ensure_image(engine, tag, BASE_IMAGE, lambda msg: None, root=tmp_path)
        assert engine.images.get(tag).id != first
        with pytest.raises(docker.errors.ImageNotFound):  # not left behind untagged
            engine.images.get(first)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            engine.images.remove(tag)


def test_a_failing_image_build_shows_its_last_lines_and_exits_3(tmp_path: Path, engine: Any) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
                                         "RUN echo the-build-says-this && exit 7\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    with pytest.raises(ImageBuildError) as info:
        ensure_image(engine, "trade-ops-failing-build:test", BASE_IMAGE, lambda msg: None, root=tmp_path)
    assert info.value.exit_code == ExitCode.CANNOT_RUN
    assert "the-build-says-this" in (info.value.detail or "") and "7" in info.value.message
