"""oms: order entry with a risk check, persisted and published; order state from fills."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from services.kit import Check, Kit, create_app
from services.kit.health import CheckFn
from services.oms.consumers import follow_executions
from services.oms.entry import OrderEntry
from services.oms.fastpath import OrdersFastPath
from services.oms.gate import serve_gate
from services.oms.handlers import router
from services.oms.riskclient import HttpRisk, NatsRisk, RiskClient
from services.oms.settings import OmsSettings
from services.oms.state import OmsState
from services.oms.store import OrderStore

__all__ = ["app"]


def _risk_check(risk: RiskClient, fail_open: bool) -> CheckFn:
    async def probe() -> Check:
        try:
            found = await risk.probe()
        except Exception as exc:
            # Fail open keeps taking orders without risk: degraded, not down.
            return Check("risk", "responseTime", "warn" if fail_open else "fail", "component",
                         output=f"risk unreachable over {risk.transport}: {exc}")
        if fail_open and found.status == "pass":
            found.status, found.output = "warn", "risk_fail_open is set: unchecked orders are accepted"
        return found

    return probe


@contextlib.asynccontextmanager
async def lifespan(kit: Kit) -> AsyncIterator[OmsState]:
    settings = kit.settings_as(OmsSettings)
    risk: RiskClient = (NatsRisk(kit.nc, settings.risk_timeout_s) if settings.risk_transport == "nats"
                        else HttpRisk(settings.risk_url, settings.risk_timeout_s))
    store = OrderStore(kit.valkey, idempotency_ttl_s=settings.idempotency_ttl_s,
                       claim_ttl_s=settings.claim_ttl_s, order_ttl_s=settings.order_ttl_s)
    counter = kit.metrics.counter("oms_orders_total", "orders by result", ("result",))
    state = OmsState(store=store, entry=OrderEntry(store, risk, kit.js, settings.risk_fail_open, counter),
                     scope=kit.scope)
    kit.add_check("risk", _risk_check(risk, settings.risk_fail_open))
    kit.spawn(lambda: follow_executions(kit, store), "executions")
    await serve_gate(kit.nc, store)  # exeq asks it before routing an order
    try:
        yield state
    finally:
        await risk.aclose()


# POST /orders is answered ahead of the FastAPI app (see fastpath.py); every other request
# (and the lifespan) is passed to it unchanged.
api = create_app("oms", settings=OmsSettings(), routers=[router], lifespan=lifespan)
app = OrdersFastPath(api, api.state.kit)
