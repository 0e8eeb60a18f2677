"""risk: pre-trade checks (POST /check and NATS `risk.check`), limits, kill switch."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from services.kit import Kit, create_app
from services.risk.consumers import follow_book, follow_working, serve_checks
from services.risk.engine import RiskEngine
from services.risk.handlers import load_kill_switch, router
from services.risk.limits import load_limits
from services.risk.settings import RiskSettings
from services.risk.state import RiskState

__all__ = ["app"]


settings = RiskSettings()
# A bad limits file stops the import.
engine = RiskEngine(load_limits(settings.limits_file), settings.max_quote_age_s)


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[RiskState]:
    await load_kill_switch(kit, engine)
    await follow_book(kit, engine, settings.replay_timeout_s)
    await follow_working(kit, engine)
    checks = kit.metrics.counter("risk_checks_total", "risk checks by transport and result",
                                 ("transport", "result"))
    await serve_checks(kit, engine, checks)
    yield RiskState(engine, checks)


app = create_app("risk", settings=settings, routers=[router], lifespan=lifespan)
