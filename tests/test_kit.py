"""The shared service kit, served for real by uvicorn against real Valkey and NATS."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from services.kit import Check, Kit, KitSettings, create_app, service_state
from services.kit.health import NamedCheck, Status, health_document, run_checks, worst
from services.kit.metrics import Metrics
from tests.helpers import Proc, wait_until
from trade_ops.infra import free_port

pytestmark = pytest.mark.process


class Echo(BaseModel):
    quantity: float = Field(gt=0)
    symbol: str


router = APIRouter()


@router.post("/echo")
async def echo(body: Echo) -> dict[str, object]:
    return body.model_dump()


@contextmanager
def serve(valkey: Proc, nats: Proc) -> Iterator[str]:
    settings = KitSettings(service="kit-test", valkey_url=valkey.url, nats_url=nats.url,
                           health_timeout_s=0.3)
    app = create_app("kit-test", settings=settings, routers=[router])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: server.started, 10), "kit app did not start"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def test_health_is_health_json_with_each_dependency(valkey_server: Proc, nats_server: Proc) -> None:
    with serve(valkey_server, nats_server) as url:
        r = httpx.get(f"{url}/health")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/health+json")
        doc = r.json()
        assert doc["status"] == "pass" and doc["serviceId"] == "kit-test"
        assert set(doc["checks"]) == {"valkey:responseTime", "nats:responseTime", "nats:publishFailures"}
        entry = doc["checks"]["valkey:responseTime"][0]
        assert entry["componentType"] == "datastore" and entry["observedUnit"] == "ms"
        assert httpx.get(f"{url}/livez").status_code == 200


def test_valkey_down_fails_health_with_503_and_recovers(fresh_valkey: Proc, nats_server: Proc) -> None:
    with serve(fresh_valkey, nats_server) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        fresh_valkey.stop()
        r = httpx.get(f"{url}/health", timeout=5)
        assert r.status_code == 503
        assert r.json()["checks"]["valkey:responseTime"][0]["status"] == "fail"
        assert httpx.get(f"{url}/livez").status_code == 200  # livez never touches dependencies


def test_validation_errors_are_422_with_readable_reasons(valkey_server: Proc, nats_server: Proc) -> None:
    with serve(valkey_server, nats_server) as url:
        r = httpx.post(f"{url}/echo", json={"quantity": -1})
        assert r.status_code == 422
        assert "body.quantity" in r.json()["detail"] and "body.symbol" in r.json()["detail"]
        bad = httpx.post(f"{url}/echo", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 422


def test_metrics_count_requests_by_route_template(valkey_server: Proc, nats_server: Proc) -> None:
    with serve(valkey_server, nats_server) as url:
        httpx.post(f"{url}/echo", json={"quantity": 1, "symbol": "BTCUSDT"})
        text = httpx.get(f"{url}/metrics").text
        assert 'http_requests_total{method="POST",route="/echo",status="200"} 1.0' in text
        assert "http_request_duration_seconds_bucket" in text


def test_a_hanging_check_is_bounded_by_its_timeout() -> None:
    async def hangs() -> Check:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")

    async def fine() -> Check:
        return Check("x", "responseTime", "pass")

    checks = asyncio.run(run_checks([NamedCheck("slow", hangs, "datastore"), NamedCheck("x", fine)],
                                    timeout=0.05))
    assert [c.status for c in checks] == ["fail", "pass"]
    assert "timed out" in (checks[0].output or "")
    assert checks[0].component_type == "datastore"  # said even though the check never answered
    doc = health_document("svc", "1", checks)
    assert doc["status"] == "fail" and "slow:responseTime" in doc["output"]


@pytest.mark.parametrize("statuses, expected", [([], "pass"), (["pass", "warn"], "warn"),
                                                (["warn", "fail", "pass"], "fail")])
def test_worst_status(statuses: list[Status], expected: Status) -> None:
    assert worst(statuses) == expected


def test_kit_spawn_of_a_bare_coroutine_that_dies_is_a_failed_health_check() -> None:
    async def main() -> list[Check]:
        kit = Kit(settings=KitSettings(), metrics=Metrics("test"))

        async def boom() -> None:
            raise RuntimeError("boom")

        task = kit.spawn(boom(), "boom")
        await asyncio.gather(task, return_exceptions=True)
        return await kit._tasks_check()

    [check] = asyncio.run(main())
    assert check.status == "fail" and "boom" in (check.output or "")


@dataclass
class Tally:
    """A service's typed state, as its lifespan yields it."""

    count: int = 0


def test_handlers_read_the_state_the_lifespan_yielded_typed() -> None:
    tally_router = APIRouter()

    @tally_router.post("/tally")
    async def tally(request: Request) -> dict[str, int]:
        state = service_state(request, Tally)
        state.count += 1
        return {"count": state.count}

    yielded: list[Tally] = []

    @contextlib.asynccontextmanager
    async def lifespan(kit: Kit) -> AsyncIterator[Tally]:
        yielded.append(Tally(count=40))
        yield yielded[0]

    app = create_app("tally", routers=[tally_router], uses_valkey=False, uses_nats=False,
                     lifespan=lifespan)
    with TestClient(app) as client:
        assert client.post("/tally").json() == {"count": 41}
        assert client.post("/tally").json() == {"count": 42}
    assert yielded[0].count == 42  # the very object the lifespan made, not a copy


def test_state_of_the_wrong_kind_or_before_the_lifespan_is_a_clear_type_error() -> None:
    kit = Kit(settings=KitSettings(service="svc"), metrics=Metrics("svc"))
    with pytest.raises(TypeError, match="svc's state is a NoneType, not a Tally"):
        kit.held_as(Tally)
    kit.held = Tally()
    assert kit.held_as(Tally) is kit.held
    with pytest.raises(TypeError, match="svc's settings is a KitSettings, not a Tally"):
        kit.settings_as(Tally)
