"""Bench workers "on other hosts": each in a network namespace this test creates (a veth
pair into a bridge), at an address of its own; the coordinator, NATS and the target at the
bridge's address. The workers join through NATS as the bench user, the coordinator names
each by its address, and the namespaces and the bridge are removed after. Traffic goes
only to loopback and to those namespaces. The bench user's isolation from the measured
subjects is checked on a real NATS too.

Creating namespaces needs root (CAP_NET_ADMIN): outside CI the test skips without it; CI
runs it (it fails there instead of skipping), as tests/test_docker.py does with Docker."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from tests.apps.stacks import ROOT
from tests.helpers import Proc, _spawn, _started, missing_here, wait_until
from trade_ops import credentials, infra
from trade_ops.bench.coordinator import run_workers
from trade_ops.bench.join import bench_login
from trade_ops.bench.runner import BenchRequest
from trade_ops.context import Context
from trade_ops.errors import ExitCode
from trade_ops.permissions import BENCH_SUBJECTS, bench_permissions, nats_permissions
from trade_ops.stack import load_stack

pytestmark = [pytest.mark.process, pytest.mark.timeout(180)]
QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (the module's lifetime)
WORKERS = 2


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


@dataclass
class Net:
    hub: str  # the coordinator's address (the bridge's)
    workers: list[tuple[str, str]]  # (namespace, address)


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    token = f"{os.getpid() % 1000:03d}{random.randrange(100):02d}"
    subnet = f"10.231.{random.randrange(1, 250)}"
    bridge, made = f"tob{token}", []
    try:
        _ip("link", "add", bridge, "type", "bridge")
    except (OSError, subprocess.CalledProcessError) as exc:
        missing_here(f"cannot create network namespaces here (needs root): {exc}")
    try:
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        workers = []
        for i in range(WORKERS):
            ns, outer, inner, addr = f"to{token}w{i}", f"tv{token}{i}", f"tn{token}{i}", f"{subnet}.{10 + i}"
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=10)
            made.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", bridge, "up")
            _ip("addr", "add", f"{addr}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            workers.append((ns, addr))
        yield Net(f"{subnet}.1", workers)
    finally:
        for ns in made:  # deleting a namespace deletes its end of the veth pair, and so the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=10)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in listed for ns in made)


def test_the_bench_user_touches_only_the_bench_subjects() -> None:
    perms = bench_permissions(credentials.BENCH_USER)
    assert perms["publish"]["allow"] == [BENCH_SUBJECTS]
    assert set(perms["subscribe"]["allow"]) == {BENCH_SUBJECTS, "_INBOX.trade-ops-bench.>"}
    services = nats_permissions([s.name for s in load_stack().services])
    assert not any(BENCH_SUBJECTS in rule["allow"] or ">" in rule["allow"]
                   for p in services.values() for rule in (p["publish"], p["subscribe"]))


async def _violations(url: str, user: str, password: str, publish: str, subscribe: str) -> list[str]:
    """What the server refuses `user`: one publish and one subscription, each tried once."""
    import asyncio

    import nats

    from services.contract import inbox_prefix

    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await nats.connect(url, user=user, password=password, error_cb=on_error, allow_reconnect=False,
                            inbox_prefix=inbox_prefix(user))
    try:
        await nc.subscribe(subscribe)
        await nc.publish(publish, b"{}")
        await nc.flush()
        await asyncio.sleep(0.3)
    finally:
        await nc.close()
    return errors


def test_control_traffic_and_measured_subjects_never_meet(tmp_path: Path) -> None:
    """On a real NATS with the users `up` makes: the bench user may neither publish an order
    nor read the fills, and no service may read or write the bench's control subjects."""
    import asyncio

    from tests.helpers import start_nats

    creds, _ = credentials.prepare(tmp_path / "run", load_stack())
    nats = start_nats(tmp_path, credentials.credentials_dir(tmp_path / "run") / "nats.conf")
    try:
        bench = asyncio.run(_violations(nats.url, credentials.BENCH_USER, creds.nats[credentials.BENCH_USER],
                                        "orders.new", "exec.fill.>"))
        oms = asyncio.run(_violations(nats.url, "oms", creds.nats["oms"], "trade-ops.bench.ready",
                                      "trade-ops.bench.>"))
    finally:
        nats.stop()
    for errors, publish, subscribe in ((bench, "orders.new", "exec.fill.>"),
                                       (oms, "trade-ops.bench.ready", "trade-ops.bench.>")):
        assert any("publish" in e and publish in e for e in errors), errors
        assert any("subscription" in e and subscribe in e for e in errors), errors


def test_workers_in_other_namespaces_join_through_nats(net: Net, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    creds, _ = credentials.prepare(run_dir, load_stack())  # the users `up` makes, the bench user too
    conf = credentials.credentials_dir(run_dir) / "nats.conf"
    port, monitor = infra.free_port(), infra.free_port()
    nats = _started(Proc(_spawn(infra.nats_command(port, monitor, tmp_path / "js", host=net.hub, config=conf),
                                tmp_path / "nats.log"), port, tmp_path / "nats.log"),
                    lambda: infra.nats_ready(f"http://{net.hub}:{monitor}"), "nats")
    null = subprocess.Popen([sys.executable, "-m", "trade_ops.bench.null_server", "--host", net.hub],
                            stdout=subprocess.PIPE, text=True)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        target = f"http://{net.hub}:{int(null.stdout.readline().split()[1])}/"  # type: ignore[union-attr]
        password = bench_login(run_dir)["password"]  # as a worker's host would hold it, in its environment
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TRADE_OPS_NATS_PASSWORD": password}
        for i, (ns, _) in enumerate(net.workers):
            out = tmp_path / f"worker-{i}.json"
            workers.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "trade_ops", "bench", "worker",
                 "--shard", f"{i}/{WORKERS}", "--join", f"nats://{net.hub}:{port}", "--out", str(out)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        stack = tmp_path / "stack.toml"
        stack.write_text(f'[infra.nats]\nhost = "{net.hub}"\nport = {port}\n')
        scenario = tmp_path / "remote.toml"
        scenario.write_text('name = "remote"\nmodel = "open"\nrate = 200.0\nduration_s = 1.5\n'
                            'concurrency = 4\nslo = ["errors==0"]\n')
        req = BenchRequest("http", str(scenario), url=target, allow_remote=True,
                           ctx=Context.resolve(run_dir, stack))
        outcome = run_workers(req, WORKERS, "nats", QUIET)
        for w in workers:
            assert w.wait(60) == 0, w.stderr.read()  # type: ignore[union-attr]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        null.terminate()
        null.wait(5)
        nats.stop()
    r = outcome.result
    assert r.requests == 300 and r.errors == 0, r
    assert outcome.exit_code in (ExitCode.OK, ExitCode.INVALID), r  # a busy host may lag: never a fail
    rows = sorted(r.workers or [], key=lambda w: w.shard)
    # each named by the address it came from, in its own namespace; each sent its own shard
    assert [w.where.split()[0] for w in rows] == [addr for _, addr in net.workers], rows
    assert [w.requests for w in rows] == [150, 150]
    for i in range(WORKERS):
        doc = orjson.loads((tmp_path / f"worker-{i}.json").read_bytes())
        assert doc["shard"] == i and doc["results"]["requests"] == 150
    assert creds.nats[credentials.BENCH_USER] not in json.dumps(r.to_json())  # no secret in the result
    assert wait_until(lambda: nats.popen.poll() is not None, 5)
