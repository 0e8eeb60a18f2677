"""The stack's JetStream topology, made by the operator: every stream and durable consumer
of the contract (services.contract STREAMS and each service's `durables`).

A service never creates, changes or deletes a stream or a durable (its NATS user may not:
trade_ops/permissions.py); it binds to its own durables and acks. So the operator makes
them, before any service starts, with the operator's NATS user:

    provision(js)                      streams, durables, retired durables removed; idempotent
    python -m services.provision       the same from the environment: compose's one-shot
                                       `topology` container and the Kubernetes Job, which run
                                       the service image (it carries services/, not trade_ops/)
    trade_ops.topology.provision_stack the same on a stack's NATS (`up`, both runtimes)

This module lives beside the contract, not in trade_ops, because the service image must be
able to run it; no service imports it.

A durable from an earlier version that differs from the contract (a pull consumer, or a
push one delivering elsewhere) is made again from where it had got to (its ack floor):
its reader's handlers are idempotent, so the few acked past the floor that come again
change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from services import contract, env

__all__ = ["consumer_config", "ensure_durable", "ensure_streams", "main", "provision", "provision_url",
           "stream_config"]

log = logging.getLogger(__name__)

MIN_STREAM_BYTES = 8 << 20


def stream_config(name: str, scale: float = 1.0) -> StreamConfig:
    """The contract's stream, with `scale` of its max_bytes (at least MIN_STREAM_BYTES): `up`
    sizes the streams' reservations to the run directory's disk (infra.stream_bytes_scale)."""
    spec = contract.STREAMS[name]
    return StreamConfig(name=name, subjects=list(spec.subjects), storage=StorageType.FILE,
                        max_age=spec.max_age_s, max_bytes=max(MIN_STREAM_BYTES, int(spec.max_bytes * scale)),
                        max_msgs_per_subject=spec.max_msgs_per_subject,
                        duplicate_window=contract.DUPLICATE_WINDOW_S)


async def ensure_streams(js: JetStreamContext, names: Iterable[str] = tuple(contract.STREAMS),
                         scale: float = 1.0) -> None:
    """Create the named streams, or bring an existing one back to the contract's config."""
    for name in names:
        config = stream_config(name, scale)
        try:
            await js.add_stream(config)
        except BadRequestError:  # exists with another config (an older version, or tampered)
            await js.update_stream(config)


def consumer_config(service: str, durable: contract.Durable) -> ConsumerConfig:
    return ConsumerConfig(durable_name=durable.name,
                          deliver_subject=contract.deliver_subject(service, durable.name),
                          ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                          ack_wait=durable.ack_wait_s, max_ack_pending=durable.max_ack_pending,
                          filter_subject=durable.subject)


def _same(have: ConsumerConfig, want: ConsumerConfig) -> bool:
    return (have.deliver_subject == want.deliver_subject and have.filter_subject == want.filter_subject
            and have.ack_wait == want.ack_wait and have.max_ack_pending == want.max_ack_pending
            and have.ack_policy == want.ack_policy)


async def ensure_durable(js: JetStreamContext, service: str, durable: contract.Durable) -> None:
    """The durable as the contract says, made anew from its ack floor when it differs."""
    want = consumer_config(service, durable)
    try:
        info = await js.consumer_info(durable.stream, durable.name)
    except NotFoundError:
        await js.add_consumer(durable.stream, want)
        return
    if _same(info.config, want):
        return
    start = (info.ack_floor.stream_seq if info.ack_floor else 0) + 1
    await js.delete_consumer(durable.stream, durable.name)
    await js.add_consumer(durable.stream, replace(want, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                                   opt_start_seq=start))
    log.info("consumer %s on %s: made again to the contract from stream seq %d", durable.name,
             durable.stream, start)


async def provision(js: JetStreamContext, services: tuple[str, ...] = contract.ALL_SERVICES,
                    scale: float = 1.0) -> None:
    """Every stream (`scale`: see stream_config), the durables of `services`, and their
    retired durables removed."""
    await ensure_streams(js, scale=scale)
    for service, durable in contract.DURABLES:
        if service in services:
            await ensure_durable(js, service, durable)
    for service in services:
        for stream, name in contract.TOPOLOGY[service].retired if service in contract.TOPOLOGY else ():
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, name)
                log.info("consumer %s on %s: retired (no version reads it now)", name, stream)


async def provision_url(url: str, user: str | None = None, password: str | None = None,
                        services: tuple[str, ...] = contract.ALL_SERVICES, scale: float = 1.0) -> None:
    auth = {"user": user, "password": password} if user and password else {}
    nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0,
                            name="trade-ops-topology", **auth)
    try:
        await provision(nc.jetstream(), services, scale)
    finally:
        await nc.close()


def main() -> int:
    """The topology on TRADE_OPS_NATS_URL as TRADE_OPS_NATS_USER, password from the file in
    TRADE_OPS_SECRETS_DIR (compose's `topology` one-shot, before any service starts)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    secrets = os.environ.get(env.SECRETS_DIR)
    password = (Path(secrets) / "nats_password").read_text().strip() if secrets else None
    url = os.environ.get(env.NATS_URL, "nats://127.0.0.1:4222")
    try:
        asyncio.run(provision_url(url, os.environ.get(env.NATS_USER), password))
    except Exception as exc:
        print(f"topology: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
