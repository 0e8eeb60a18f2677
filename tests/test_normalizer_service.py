"""The normalizer process against real NATS and Valkey: bars on the bus, in Valkey, over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis
from nats.aio.msg import Msg

from services import provision as topology
from services.kit import bus
from tests.bus_helpers import send
from tests.helpers import Proc, json_object, start_service, wait_until
from tests.test_sink_kit import get, tick

pytestmark = pytest.mark.process

M = 60_000
T0 = 1_767_225_600_000.0


def collect_bars_while_publishing(nats_url: str, ticks: list[dict[str, Any]],
                                  want: int) -> list[dict[str, Any]]:
    async def _run() -> list[dict[str, Any]]:
        nc = await bus.connect(nats_url, "test")
        js = nc.jetstream()
        await topology.ensure_streams(js, ["TICKS", "BARS"])
        got: list[dict[str, Any]] = []

        async def on_bar(msg: Msg) -> None:
            got.append(json_object(msg.data))

        sub = await nc.subscribe("market.bar.1m.NRMZ", cb=on_bar)
        for t in ticks:
            await send(js, f"market.tick.{t['symbol']}", t)
        for _ in range(500):
            if len(got) >= want:
                break
            await asyncio.sleep(0.02)
        await sub.unsubscribe()
        await nc.close()
        return got

    return asyncio.run(_run())


def test_bars_on_the_bus_in_valkey_and_over_http(tmp_path: Path, fresh_nats: Proc,
                                                 valkey_server: Proc) -> None:
    r = redis.Redis.from_url(valkey_server.url)
    r.delete("bars:1m:NRMZ", "bars:5m:NRMZ")
    svc = start_service("normalizer", tmp_path, {"TRADE_OPS_NATS_URL": fresh_nats.url,
                                                  "TRADE_OPS_VALKEY_URL": valkey_server.url})
    try:
        prices = [(0, 10.0, 1), (20_000, 12.0, 2), (40_000, 9.0, 3), (59_000, 11.0, 4), (M + 1, 11.5, 5)]
        ticks = [tick("NRMZ", i, last=p, volume=v, ts=T0 + dt) for i, (dt, p, v) in enumerate(prices, 1)]
        [bar] = collect_bars_while_publishing(fresh_nats.url, ticks, want=1)
        assert bar["id"] == f"NRMZ-1m-{int(T0)}" and (bar["start"], bar["end"]) == (T0, T0 + M)
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (10.0, 12.0, 9.0, 11.0)
        assert bar["volume"] == 10.0 and bar["trades"] == 4
        stored = json_object(r.lindex("bars:1m:NRMZ", 0))
        assert stored == bar

        body = get(svc.url + "/bars/nrmz?interval=1m").json()
        assert body["bars"] == [bar] and body["current"]["open"] == 11.5
        five = get(svc.url + "/bars/NRMZ?interval=5m").json()
        assert five["bars"] == [] and five["current"]["volume"] == 15.0

        missing = get(svc.url + "/bars/NOSUCH?interval=1m")
        assert missing.status_code == 404 and "NOSUCH" in missing.json()["detail"]
        bad = get(svc.url + "/bars/NRMZ?interval=2m")
        assert bad.status_code == 422 and "interval" in bad.json()["detail"]
        assert get(svc.url + "/bars/NRMZ?limit=0").status_code == 422
        health = get(svc.url + "/health")
        assert health.status_code == 200 and health.json()["status"] == "pass", health.text
    finally:
        svc.stop()
    assert wait_until(lambda: svc.popen.poll() is not None, 5)
