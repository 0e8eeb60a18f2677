"""Publish hand-built events on a real NATS, and poll a service until it has seen them."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import orjson

from services import contract
from services import provision as topology
from services.kit import bus
from tests.helpers import Proc
from trade_ops import infra

__all__ = ["get_json_until", "infra_env", "publish", "restart_nats"]


def restart_nats(old: Proc, workdir: Path) -> Proc:
    """The same port and store: JetStream keeps the streams and the durable consumers."""
    cmd = infra.nats_command(old.port, infra.free_port(), workdir / f"nats-{old.port}")
    log = workdir / f"nats-{old.port}-again.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(popen, old.port, log, old.url)


async def send(js: Any, subject: str, event: Any, event_id: str | None = None) -> int:
    """Publish as any producer could, a contract Struct or a hand-made (even malformed) dict,
    acknowledged by JetStream (services publish only Structs, through bus.publish_event)."""
    data = contract.encode(event) if isinstance(event, msgspec.Struct) else orjson.dumps(event)
    msg_id = event_id or (event.id if isinstance(event, contract.Event) else event.get("id"))
    ack = await js.publish(subject, data, headers={"Nats-Msg-Id": str(msg_id)} if msg_id else None)
    return int(ack.seq)


def publish(nats_url: str, events: Iterable[tuple[Any, ...]]) -> None:
    """Publish (subject, event[, message id]) in order, each acknowledged by JetStream.

    The message id defaults to the event id; another one gets past JetStream's duplicate
    window, like a redelivery would, to test a consumer's own idempotency.
    """

    async def _run() -> None:
        nc = await bus.connect(nats_url, "test-publisher")
        try:
            js = nc.jetstream()
            await topology.ensure_streams(js, list(bus.STREAMS))
            for subject, event, *msg_id in events:
                await send(js, subject, event, *msg_id)
        finally:
            await nc.close()

    asyncio.run(_run())


def get_json_until(url: str, predicate: Callable[[Any], bool], timeout: float = 10.0,
                   params: dict[str, Any] | None = None) -> Any:
    """GET `url` until a 200 whose JSON satisfies `predicate`; fail with the last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        resp = httpx.get(url, params=params, timeout=2)
        last = (resp.status_code, resp.text)
        if resp.status_code == 200 and predicate(resp.json()):
            return resp.json()
        time.sleep(0.05)
    raise AssertionError(f"{url} never satisfied the condition; last answer {last}")


def infra_env(valkey: Proc | None, nats: Proc, **settings: str) -> dict[str, str]:
    """TRADE_OPS_* for a service on these servers, plus its own settings (window="3").

    Quotes count as fresh for an hour unless a test says otherwise: these tests publish a
    tick at a fixture's start, not a live feed, and risk and the venue refuse to price a
    MARKET order on a quote older than max_quote_age_s / quote_stale_s (10 s)."""
    settings = {"max_quote_age_s": "3600", "quote_stale_s": "3600", **settings}
    env = {"TRADE_OPS_NATS_URL": nats.url,
           **{f"TRADE_OPS_{k.upper()}": v for k, v in settings.items()}}
    if valkey is not None:
        env["TRADE_OPS_VALKEY_URL"] = valkey.url
    return env
