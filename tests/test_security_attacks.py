"""One compromised service (issue 25): each attack of the issue, run with that service's own
credentials read from the run directory of a real 14-service stack (`supervisor.up`), is
refused, and afterwards the stack keeps its promises (`trade-ops chaos`'s checks, plus
the topology the attacks went for: streams and durables exactly as the contract says).
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
import pytest
import redis
import redis.exceptions
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, RePublish, StreamConfig

from services import contract
from services import provision as topology
from tests.apps.stacks import free_stack
from tests.orderpath import fill_event
from trade_ops import credentials, infra
from trade_ops.chaos import ChaosRequest, run_chaos
from trade_ops.context import Context
from trade_ops.rundir import RunDir
from trade_ops.runtime import supervisor
from trade_ops.stack import Stack

pytestmark = [pytest.mark.process, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunDir, Stack]]:
    rd, chosen = RunDir(tmp_path_factory.mktemp("attacks") / "run"), free_stack()
    try:
        supervisor.up(rd, chosen, timeout=120)
        yield rd, chosen
    finally:
        supervisor.down(rd, grace=2)


class Attacker:
    """A NATS connection as `service`, with the password its own secrets directory holds."""

    def __init__(self, rd: RunDir, service: str) -> None:
        self.rd, self.service = rd, service
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def __aenter__(self) -> Attacker:
        password = (credentials.service_secrets_dir(self.rd.path, self.service) / "nats_password").read_text()

        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc).lower())

        self.nc = await nats.connect(self.rd.stack().nats_url(), user=self.service, password=password,
                                     inbox_prefix=contract.inbox_prefix(self.service), error_cb=on_error,
                                     allow_reconnect=False, max_reconnect_attempts=0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.nc is not None
        await self.nc.close()

    @property
    def js(self) -> Any:
        assert self.nc is not None
        return self.nc.jetstream(timeout=1.0)

    async def refused(self, call: Any) -> str:
        """Run a JetStream API call: the server must refuse it (a permissions violation,
        so no reply comes, or a JetStream error); what the refusal said."""
        try:
            await call
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.APIError) as exc:
            await asyncio.sleep(0.1)  # the violation's -ERR arrives on the connection
            return f"{type(exc).__name__}: {exc}; {'; '.join(self.errors)}"
        raise AssertionError(f"{self.service}: the server did what it asked")

    async def may_not_subscribe(self, subject: str) -> None:
        assert self.nc is not None
        await self.nc.subscribe(subject)
        await asyncio.sleep(0.3)  # the violation arrives on the connection
        assert any("permissions violation for subscription" in e for e in self.errors), self.errors


async def _as_operator(rd: RunDir) -> NATS:
    return await nats.connect(rd.stack().nats_url(), **credentials.nats_login(rd.path))


async def _last_seq(rd: RunDir, stream: str) -> int:
    nc = await _as_operator(rd)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.last_seq)
    finally:
        await nc.close()


async def _topology_as_contract(rd: RunDir) -> None:
    """Every stream and durable as the operator made them (the invariant the attacks go for)."""
    nc = await _as_operator(rd)
    try:
        js = nc.jetstream()
        for name in contract.STREAMS:
            info = await js.stream_info(name)
            want = topology.stream_config(name, infra.stream_bytes_scale(rd.path))
            assert info.config.subjects == want.subjects, name
            assert info.config.republish is None and not info.config.sealed, name
            assert info.config.max_msgs in (None, -1) and info.config.max_bytes == want.max_bytes, name
        for service, durable in contract.DURABLES:
            info = await js.consumer_info(durable.stream, durable.name)
            assert info.config.deliver_subject == contract.deliver_subject(service, durable.name), durable
    finally:
        await nc.close()


def _violation(said: str) -> None:
    assert "permissions violation" in said or "expected to be ephemeral" in said, said


# -- the attacks --------------------------------------------------------------------------
def test_normalizer_cannot_republish_bars_as_fills(stack: tuple[RunDir, Stack]) -> None:
    rd, _ = stack

    async def attack() -> None:
        async with Attacker(rd, "normalizer") as a:
            republish = StreamConfig(name=contract.BARS, subjects=[contract.BAR_ALL],
                                     republish=RePublish(src="market.bar.zz.>", dest="exec.fill.>"))
            _violation(await a.refused(a.js.update_stream(republish)))
            before = await _last_seq(rd, contract.EXEC)
            _, forged = fill_event("never-traded", "BTCUSDT", "sell", 7.0, 1.0)
            await a.js.publish("market.bar.zz.BTCUSDT", orjson.dumps(forged))  # its own subject
            await asyncio.sleep(0.3)
            assert await _last_seq(rd, contract.EXEC) == before  # no fill was made of it

    asyncio.run(attack())


def test_execution_quality_cannot_steal_the_oms_fills_nor_stop_event_writer(
        stack: tuple[RunDir, Stack]) -> None:
    rd, _ = stack
    oms = contract.TOPOLOGY["oms"].durable("oms-executions")
    writer = contract.TOPOLOGY["event-writer"].durable("event-writer-exec")

    async def attack() -> None:
        async with Attacker(rd, "execution-quality") as a:
            _violation(await a.refused(a.js.delete_consumer(oms.stream, oms.name)))
            _violation(await a.refused(a.js.delete_consumer(writer.stream, writer.name)))
            stolen = ConsumerConfig(durable_name=oms.name, ack_policy=AckPolicy.EXPLICIT,
                                    deliver_subject="_INBOX.execution-quality.stolen",
                                    filter_subject=oms.subject)
            _violation(await a.refused(a.js.add_consumer(oms.stream, stolen)))  # DURABLE.CREATE
            # The one create it may send (ephemeral consumers): a durable name there is refused.
            stolen.name = None
            _violation(await a.refused(a.js._jsm._api_request(
                f"$JS.API.CONSUMER.CREATE.{oms.stream}",
                orjson.dumps({"stream_name": oms.stream, "config": stolen.as_dict()}), timeout=1.0)))
            await a.may_not_subscribe(contract.deliver_subject("oms", oms.name))  # where the OMS's comes

    asyncio.run(attack())


def test_sink_ticks_cannot_capture_risk_checks(stack: tuple[RunDir, Stack]) -> None:
    rd, _ = stack

    async def attack() -> None:
        async with Attacker(rd, "sink-ticks") as a:
            wider = StreamConfig(name=contract.TICKS, subjects=[contract.TICK_ALL, contract.RISK_CHECK])
            _violation(await a.refused(a.js.update_stream(wider)))
            await a.may_not_subscribe(contract.RISK_CHECK)  # only risk may hear the order flow

    asyncio.run(attack())


def test_no_service_may_cut_seal_purge_or_delete_a_stream(stack: tuple[RunDir, Stack]) -> None:
    rd, _ = stack

    async def attack() -> None:
        async with Attacker(rd, "event-writer") as a:
            cut = topology.stream_config(contract.EXEC)
            cut.max_msgs = 10
            _violation(await a.refused(a.js.update_stream(cut)))
            sealed = topology.stream_config(contract.ORDERS)
            sealed.sealed = True
            _violation(await a.refused(a.js.update_stream(sealed)))
            _violation(await a.refused(a.js.purge_stream(contract.EXEC)))
            _violation(await a.refused(a.js.delete_stream(contract.ORDERS)))
            _violation(await a.refused(a.js.add_stream(StreamConfig(name="MINE", subjects=["orders.x"]))))
        async with Attacker(rd, "sink-alt") as a:
            sealed = topology.stream_config(contract.ALT)
            sealed.sealed = True
            _violation(await a.refused(a.js.update_stream(sealed)))

    asyncio.run(attack())


def _valkey_as(rd: RunDir, service: str) -> redis.Redis:
    password = (credentials.service_secrets_dir(rd.path, service) / "valkey_password").read_text()
    port = rd.stack()["valkey"].port
    assert port is not None  # infra always has its port
    return redis.Redis(port=port, username=service, password=password)


def _noperm(client: redis.Redis, *command: Any) -> None:
    """Refused: by the ACL (NOPERM), or before it for all clients (DEBUG is off server-wide)."""
    with pytest.raises(redis.exceptions.ResponseError) as refused:
        client.execute_command(*command)  # type: ignore[no-untyped-call]  # untyped in redis-py
    said = str(refused.value).lower()
    assert "no permissions" in said or "command not allowed" in said, (command, said)


def test_a_service_touches_only_its_own_valkey_keys_with_only_the_commands_it_uses(
        stack: tuple[RunDir, Stack]) -> None:
    rd, _ = stack
    feast = _valkey_as(rd, "feast-pipeline")
    assert feast.smembers("features:symbols") is not None  # its own keys: fine
    for command in (("SWAPDB", 0, 9), ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("SCAN", 0),
                    ("MIGRATE", "127.0.0.1", 1, "features:symbols", 0, 100), ("SCRIPT", "FLUSH"),
                    ("DEBUG", "SLEEP", 0), ("CONFIG", "GET", "dir"), ("SELECT", 9),
                    ("DEL", contract.HALTS_KEY), ("GET", "oms:order:x"), ("SET", "ptrc:cursor:EXEC", 0)):
        _noperm(feast, *command)
    risk = _valkey_as(rd, "risk")  # its halts: read, set and cleared field by field, never deleted
    assert isinstance(risk.hgetall(contract.HALTS_KEY), dict)
    for command in (("DEL", contract.HALTS_KEY), ("UNLINK", contract.HALTS_KEY),
                    ("EXPIRE", contract.HALTS_KEY, 1), ("GET", "oms:order:x")):
        _noperm(risk, *command)
    # exeq asks the OMS over the bus: it is no valkey user at all
    assert not (credentials.service_secrets_dir(rd.path, "exeq") / "valkey_password").exists()
    for service in ("normalizer", "live-gateway", "ptrc", "execution-quality"):
        _noperm(_valkey_as(rd, service), "GET", "oms:order:x")  # only the OMS reads orders


def test_what_holds_orders_and_fills_is_the_operators_alone(stack: tuple[RunDir, Stack]) -> None:
    """The AOF, the NATS store and the lake: folders 0700, files 0600 (`nobody` read whole
    order records from a 0644 AOF)."""
    rd, chosen = stack
    roots = [rd.path / "valkey", rd.nats_store, Path(chosen.lake_uri(rd.path))]
    assert any((rd.path / "valkey").rglob("*.aof")), "no append-only file yet"
    for root in roots:
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), (oct(mode), path)


def test_after_the_attacks_the_topology_is_the_contracts_and_the_promises_hold(
        stack: tuple[RunDir, Stack]) -> None:
    rd, _ = stack
    asyncio.run(_topology_as_contract(rd))
    result = run_chaos(ChaosRequest(faults=["burst 20@0.5+0.1"], rate=20, duration_s=2, settle_s=60,
                                    ctx=Context.resolve(rd.path), report_dir=rd.path / "chaos-reports"))
    assert (result.lost, result.traded_after_error, result.duplicated) == (0, 0, 0), result
    assert result.acknowledged > 0, result
    assert result.settled, (result.unsettled, result.examples.unsettled)
