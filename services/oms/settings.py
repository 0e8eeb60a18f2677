"""oms settings (TRADE_OPS_* environment variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.kit import KitSettings, url_of

__all__ = ["OmsSettings"]


class OmsSettings(KitSettings):
    service: str = "oms"
    # nats: request/reply on `risk.check` (measured faster); http: POST {risk_url}/check
    risk_transport: Literal["nats", "http"] = "nats"
    risk_timeout_s: float = Field(0.5, gt=0)
    risk_url: str = Field(default_factory=lambda: url_of("risk", "http://127.0.0.1:8103"))
    # false (default): no risk answer -> 503. true: accept unchecked, and /health says warn.
    risk_fail_open: bool = False
    # How long a decided client_order_id maps to its order (a retry replays the answer).
    idempotency_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    # How long a client_order_id is held by a request still in flight (a crash mid-request
    # frees it after this; a decided order holds it for idempotency_ttl_s).
    claim_ttl_s: int = Field(10, gt=0, le=3600)
    # How long an order record is kept in Valkey after its last change (the lake keeps all).
    order_ttl_s: int = Field(7 * 24 * 3600, gt=0)
