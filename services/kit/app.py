"""The app factory every service is built with.

    app = create_app("oms", routers=[router], lifespan=start_consumers)

gives a FastAPI app with `/livez`, `/health` (application/health+json), `/metrics`,
orjson responses, a 503 with a reason when a dependency is down, and a lifespan that
opens a pooled async Valkey client and a NATS connection (reconnecting forever), then
runs the service's own lifespan (the streams and durables are the operator's: made at
`up`, by services/provision.py). What a service needs (valkey, nats, its durables)
comes from its entry in services.contract.TOPOLOGY. Handlers reach
the open clients through `get_kit(request)`; they never build clients.

A service's own objects (its store, engine, book...) are one typed object its lifespan
yields, usually a small dataclass; handlers read it with `service_state(request, OmsState)`,
background work is handed it directly. No string-keyed state, no Optional clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats.errors
import redis.asyncio as aioredis
import redis.exceptions
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import SecretStr
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services import contract
from services.kit import bus
from services.kit.auth import AccountScope
from services.kit.guard import BodyGuard
from services.kit.health import Check, CheckFn, NamedCheck, health_document, http_status, run_checks
from services.kit.invalid import invalid_response
from services.kit.jsonresp import JSONResponse
from services.kit.metrics import CountsCollector, Metrics, MetricsMiddleware
from services.kit.settings import KitSettings
from services.kit.supervise import TaskHealth, Work, supervise

__all__ = ["HealthJSONResponse", "Kit", "ServiceLifespan", "create_app", "get_kit", "service_state",
           "valkey_auth"]

log = logging.getLogger("services")

EXIT_STEP_S = 0.25  # each step of the lifespan's exit that waits on NATS


class HealthJSONResponse(JSONResponse):
    media_type = "application/health+json"


C = TypeVar("C")


@dataclass
class Kit:
    """What a running service holds: settings, clients, metrics, background tasks."""

    settings: KitSettings
    metrics: Metrics
    opened_valkey: aioredis.Redis | None = None  # set by the lifespan: read `valkey`
    opened_nats: NATS | None = None
    opened_js: JetStreamContext | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    task_health: dict[str, TaskHealth] = field(default_factory=dict)
    checks: list[NamedCheck] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    held: object = None  # what the service's lifespan yielded: read it with `held_as`
    # Whose orders, fills and positions a request may see: one rule (services/kit/auth.py).
    scope: AccountScope = field(default_factory=lambda: AccountScope(None, enforce_tokens=False))

    def spawn(self, work: Work | Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run background work for the service's lifetime, restarted with backoff when it
        dies (give a function that makes the coroutine: `lambda: consume(kit)`), and
        reported by /health as `task:{name}` (see supervise.py)."""
        restartable = callable(work)
        health = self.task_health[name] = TaskHealth(name, restartable=restartable)
        if not restartable:
            coro = work
            work = lambda: coro  # type: ignore[assignment]  # noqa: E731 - awaited once: a bare coroutine cannot restart
        if len(self.task_health) == 1:
            self.add_check("tasks", self._tasks_check)
        task = asyncio.create_task(supervise(work, health), name=name)  # type: ignore[arg-type]
        self.tasks.append(task)
        return task

    async def _tasks_check(self) -> list[Check]:
        return [h.check() for h in self.task_health.values()]

    def held_as(self, kind: type[C]) -> C:
        """The service's state (what its lifespan yielded), typed: `kit.held_as(OmsState)`.
        A wrong kind, or a read before the lifespan ran, is a bug: said at once."""
        return _of_kind(self.held, kind, self.settings.service, "state")

    def settings_as(self, kind: type[C]) -> C:
        """The service's own settings class, typed: `kit.settings_as(OmsSettings)`."""
        return _of_kind(self.settings, kind, self.settings.service, "settings")

    def add_check(self, name: str, fn: CheckFn, component_type: str = "component") -> None:
        """`component_type`: "datastore" or "system" for a dependency, "component" for a
        part of the service itself (its consumer, its background tasks)."""
        self.checks.append(NamedCheck(name, fn, component_type))

    # The clients, never None for a service that declares them (services.contract.TOPOLOGY):
    # a handler or consumer uses them without asserting.
    @property
    def valkey(self) -> aioredis.Redis:
        return _opened(self.opened_valkey, self.settings.service, "valkey")

    @property
    def nc(self) -> NATS:
        return _opened(self.opened_nats, self.settings.service, "nats")

    @property
    def js(self) -> JetStreamContext:
        return _opened(self.opened_js, self.settings.service, "nats")



def _of_kind(found: object, kind: type[C], service: str, what: str) -> C:
    if not isinstance(found, kind):  # on the hot path: nothing built unless it fails
        raise TypeError(f"{service}'s {what} is a {type(found).__name__}, not a {kind.__name__}")
    return found


def _opened(client: C | None, service: str, what: str) -> C:
    if client is None:
        raise RuntimeError(f"{service} has no {what} client: declare it in services.contract.TOPOLOGY")
    return client


def get_kit(request: Request) -> Kit:
    kit = request.app.state.kit
    if not isinstance(kit, Kit):
        raise TypeError("this app was not made by services.kit.create_app")
    return kit


def service_state(request: Request, kind: type[C]) -> C:
    """The state the service's lifespan yielded, typed: `service_state(request, OmsState)`."""
    return get_kit(request).held_as(kind)


# A service's lifespan: given the kit with its clients open, it starts the service's work
# and yields the service's state (or None when it keeps none).
ServiceLifespan = Callable[[Kit], AbstractAsyncContextManager[object]]


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stdout, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _valkey_check(kit: Kit) -> Check:
    started = time.perf_counter()
    await kit.valkey.ping()
    ms = round((time.perf_counter() - started) * 1000, 3)
    return Check("valkey", "responseTime", "pass", "datastore", ms, "ms")


async def _nats_check(kit: Kit) -> Check:
    nc = kit.opened_nats
    if nc is None or not nc.is_connected:
        state = "reconnecting" if nc is not None and nc.is_reconnecting else "disconnected"
        return Check("nats", "connection", "fail", "system", state, output=f"NATS is {state}")
    started = time.perf_counter()
    await bus.round_trip(nc, timeout=1)  # a round trip to the server, not just the socket state
    ms = round((time.perf_counter() - started) * 1000, 3)
    return Check("nats", "responseTime", "pass", "system", ms, "ms")


async def _publish_check() -> Check:
    """fail while this service's publishes fail (since the last success): its work is not
    getting out, whatever its connection says."""
    record = bus.PUBLISHES
    if record.failing_since is None:
        return Check("nats", "publishFailures", "pass", "system", 0, "s")
    seconds = round(time.time() - record.failing_since, 1)
    return Check("nats", "publishFailures", "fail", "system", seconds, "s",
                 output=f"publishes to JetStream failing for {seconds:g}s (last: {record.subject}: "
                        f"{record.error}); a full disk under the NATS store does this")


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def valkey_auth(settings: KitSettings) -> dict[str, str]:
    """from_url keyword arguments for the service's ACL user (none without credentials)."""
    password = _reveal(settings.valkey_password)
    if password is None:
        return {}
    return {"username": settings.valkey_user or settings.service, "password": password}


# A dependency that is down is a 503 with a reason, never a 500 with a traceback.
dependency_errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                     nats.errors.TimeoutError, nats.errors.NoRespondersError,
                     nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError)


def dependency_down_detail(exc: Exception) -> str:
    what = "valkey" if isinstance(exc, redis.exceptions.RedisError) else "nats"
    return f"dependency unavailable: {what}: {exc or type(exc).__name__}"


def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": dependency_down_detail(exc)})


def valkey_client(settings: KitSettings) -> aioredis.Redis:
    """A pool that waits (bounded) for a free connection instead of failing at its size,
    and sends a command again, once, on a connection a Valkey restart closed: pooled
    connections from before a restart fail on first use. Commands the services send are
    idempotent or compare-and-set, so the one retry cannot apply anything twice."""
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.valkey_url, max_connections=settings.valkey_pool_size,
        timeout=settings.valkey_pool_wait_s, socket_timeout=2, socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 1), retry_on_error=[redis.exceptions.ConnectionError],
        **valkey_auth(settings))
    return aioredis.Redis.from_pool(pool)  # closing the client closes the pool


def create_app(
    name: str,
    *,
    settings: KitSettings | None = None,
    routers: Sequence[APIRouter] = (),
    uses_valkey: bool | None = None,
    uses_nats: bool | None = None,
    lifespan: ServiceLifespan | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    settings = settings or KitSettings(service=name)
    # A service of the stack declares its needs once, in the contract; others say them here.
    needs = contract.TOPOLOGY.get(name)
    if uses_valkey is None:
        uses_valkey = needs.valkey if needs else True
    if uses_nats is None:
        uses_nats = needs.nats if needs else True
    _configure_logging(settings.log_level)
    contract.set_clock_offset(settings.clock_offset_s)
    metrics = Metrics(name)
    metrics.registry.register(CountsCollector(
        "bus_malformed_messages", "Messages that did not decode as their contract payload (acked, dropped)",
        "family", bus.MALFORMED))
    kit = Kit(settings=settings, metrics=metrics, scope=AccountScope.from_settings(settings))

    @contextlib.asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        if uses_valkey:
            kit.opened_valkey = valkey_client(settings)
            kit.add_check("valkey", lambda: _valkey_check(kit), "datastore")
        if uses_nats:
            kit.opened_nats = await bus.connect(settings.nats_url, name, user=settings.nats_user,
                                                password=_reveal(settings.nats_password),
                                                read_every=settings.nats_read_every_s)
            kit.opened_js = kit.opened_nats.jetstream()
            kit.add_check("nats", lambda: _nats_check(kit), "system")
            if needs is None or needs.publishes:
                kit.add_check("nats", _publish_check, "system")
        try:
            if lifespan is not None:
                async with lifespan(kit) as held:
                    kit.held = held
                    yield
            else:
                yield
        finally:
            for task in kit.tasks:
                task.cancel()
            await asyncio.gather(*kit.tasks, return_exceptions=True)
            if kit.opened_nats is not None:
                # close, not drain: consumers ack only after their work, so nothing is lost,
                # and draining cancelled pull subscriptions stalls shutdown for seconds.
                # Bounded short (~1 ms each when NATS is up): the whole exit fits the stop
                # budget after the requests' drain (KitSettings.drain_s).
                with contextlib.suppress(Exception):
                    await bus.round_trip(kit.opened_nats, timeout=EXIT_STEP_S)  # what was written has arrived
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(kit.opened_nats.close(), EXIT_STEP_S)
            if kit.opened_valkey is not None:
                await kit.opened_valkey.aclose()

    # No /docs or /redoc: their pages load scripts from a CDN, which a machine without
    # network access cannot reach. /openapi.json is served, for any local viewer.
    app = FastAPI(title=name, version=version, description=contract.OWN_DESCRIPTION, lifespan=_lifespan,
                  default_response_class=JSONResponse, docs_url=None, redoc_url=None)
    app.state.kit = kit
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes)  # outermost: before any work
    for exc_type in dependency_errors:
        app.add_exception_handler(exc_type, _dependency_down)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # One readable reason per problem: "body.quantity: Input should be greater than 0".
        return invalid_response(exc.errors())

    live = {"status": "pass", "serviceId": name}
    if settings.instance_id:
        live["instance"] = settings.instance_id  # trade_ops/identity.py: whom the CLI talks to

    @app.get("/livez", include_in_schema=False)
    async def livez() -> dict[str, str]:
        return live

    running: asyncio.Future[list[Check]] | None = None

    async def current_checks() -> list[Check]:
        # Concurrent /health requests share one run of the checks: 200 probes at once
        # cost one ping of each dependency, not 200 (which timed them out).
        nonlocal running
        if running is None or running.done():
            running = asyncio.ensure_future(run_checks(kit.checks, settings.health_timeout_s))
        return await asyncio.shield(running)

    @app.get("/health", response_class=HealthJSONResponse)
    async def health() -> HealthJSONResponse:
        checks = await current_checks()
        doc = health_document(name, version, checks)
        doc["uptime_s"] = round(time.time() - kit.started_at, 1)
        return HealthJSONResponse(doc, status_code=http_status(doc["status"]))

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Any:
        return metrics.response()

    for router in routers:
        app.include_router(router)
    return app
