"""risk: pre-trade checks (POST /check and NATS `risk.check`), limits, kill switch."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.kit import Kit, create_app
from services.risk.consumers import follow_book, serve_checks
from services.risk.engine import RiskEngine
from services.risk.handlers import load_kill_switch, router
from services.risk.limits import load_limits
from services.risk.settings import RiskSettings

__all__ = ["app", "build"]


@contextlib.asynccontextmanager
async def _run(kit: Kit) -> AsyncIterator[None]:
    settings: RiskSettings = kit.settings  # type: ignore[assignment]
    engine = kit.own("engine", RiskEngine)
    await load_kill_switch(kit, engine)
    await follow_book(kit, engine, settings.replay_timeout_s)
    await serve_checks(kit, engine)
    yield


def build(settings: RiskSettings | None = None) -> FastAPI:
    settings = settings or RiskSettings()
    app = create_app("risk", settings=settings, routers=[router],
                     lifespan=_run)
    app.state.kit.state["engine"] = RiskEngine(load_limits(settings.limits_file))
    return app


app = build()
