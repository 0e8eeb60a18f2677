"""One Settings object per service, from TRADE_OPS_* environment variables."""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KitSettings", "url_of"]


class KitSettings(BaseSettings):
    """What every service reads. A service subclasses this to add its own fields."""

    model_config = SettingsConfigDict(env_prefix="TRADE_OPS_", extra="ignore")

    service: str = "service"
    version: str = "0.1.0"
    host: str = "127.0.0.1"
    port: int = 8000
    valkey_url: str = "redis://127.0.0.1:6379/0"
    nats_url: str = "nats://127.0.0.1:4222"
    lake_uri: str = ".trade-ops/lake"
    run_dir: str = ".trade-ops"
    # Each dependency check in /health is bounded by this: /health never hangs.
    health_timeout_s: float = 0.5
    # How long a durable consumer's unacked message waits before redelivery (its reader died).
    ack_wait_s: float = 30.0
    # Most messages a consumer handles at once: everything that arrived while it was busy,
    # up to this, costs one round of Valkey writes.
    consumer_batch: int = Field(256, ge=1, le=10_000)
    log_level: str = "info"
    # Valkey connections per process; a request that finds them all busy waits up to
    # valkey_pool_wait_s for one (then 503) instead of failing at once.
    valkey_pool_size: int = Field(64, ge=1, le=10_000)
    valkey_pool_wait_s: float = Field(2.0, gt=0)
    # Bounded resources (services/kit/server.py, services/kit/guard.py).
    max_body_bytes: int = Field(1 << 20, ge=1024)
    header_timeout_s: float = Field(5.0, gt=0)
    keep_alive_s: float = Field(5.0, gt=0)
    max_connections: int = Field(1000, ge=1)


def url_of(service: str, default: str | None = None) -> str:
    """Base URL of another service, as the supervisor exported it."""
    var = "TRADE_OPS_URL_" + service.upper().replace("-", "_")
    value = os.environ.get(var, default)
    if value is None:
        raise RuntimeError(f"{var} is not set: where does {service} run?")
    return value.rstrip("/")
