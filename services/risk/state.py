"""What a running risk service holds, built by its lifespan (services/risk/app.py)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

from services.risk.engine import RiskEngine

__all__ = ["RiskState"]


@dataclass(frozen=True, slots=True)
class RiskState:
    engine: RiskEngine
    checks: Counter  # risk_checks_total by transport (http, nats) and result
