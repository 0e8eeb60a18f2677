"""risk settings (TRADE_OPS_* environment variables)."""

from __future__ import annotations

from services.kit import KitSettings
from services.risk.limits import DEFAULT_FILE

__all__ = ["RiskSettings"]


class RiskSettings(KitSettings):
    service: str = "risk"
    limits_file: str = str(DEFAULT_FILE)  # TRADE_OPS_LIMITS_FILE
    # How long startup waits for positions and quotes to catch up before serving anyway.
    replay_timeout_s: float = 15.0
    # A MARKET order is rejected when its symbol's last quote is older than this.
    max_quote_age_s: float = 10.0
