"""One Settings object per service, from TRADE_OPS_* environment variables.

Secrets are read from files in `secrets_dir` (TRADE_OPS_SECRETS_DIR: the run directory's
secrets/<service>/ under `trade-ops up`, /run/secrets under compose), one file per field
named like it (`valkey_password`), so they never sit in the process environment. A field
set in the environment wins over its file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services import env
from services.hosts import is_loopback

__all__ = ["SECRET_FIELDS", "FollowerSettings", "KitSettings", "url_of"]

SECRET_FIELDS = ("valkey_password", "nats_password", "operator_token")


class KitSettings(BaseSettings):
    """What every service reads. A service subclasses this to add its own fields."""

    model_config = SettingsConfigDict(env_prefix=env.PREFIX, extra="ignore")

    service: str = "service"
    version: str = "0.1.0"
    host: str = "127.0.0.1"  # TRADE_OPS_HOST and _PORT: where `python -m services` binds
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
    # 0: read NATS as messages arrive. A service that only follows the flow sets this (it
    # subclasses FollowerSettings): its socket is then read at most this often, all that
    # came in one go (bus._read_in_batches), for less CPU a message and up to this delay.
    nats_read_every_s: float = Field(0.0, ge=0.0, le=1.0)
    log_level: str = "info"
    # Shift this process's clock (services.contract.now_ms) by this many seconds: a test
    # gives one service a skewed clock with TRADE_OPS_CLOCK_OFFSET_S.
    clock_offset_s: float = Field(0.0, ge=-86_400, le=86_400)
    # Valkey connections per process; a request that finds them all busy waits up to
    # valkey_pool_wait_s for one (then 503) instead of failing at once.
    valkey_pool_size: int = Field(64, ge=1, le=10_000)
    valkey_pool_wait_s: float = Field(2.0, gt=0)
    # Bounded resources (services/kit/server.py, services/kit/guard.py).
    max_body_bytes: int = Field(1 << 20, ge=1024)
    request_timeout_s: float = Field(5.0, gt=0)  # a whole request, headers and body
    max_header_bytes: int = Field(32 * 1024, ge=1024)  # request line and headers (431 beyond)
    max_headers: int = Field(100, ge=8)
    keep_alive_s: float = Field(5.0, gt=0)
    max_requests: int = Field(1000, ge=1)  # arrived whole and in progress (503 beyond)
    max_connections: int = Field(4096, ge=2)  # in all: past it the oldest idle one is closed
    max_connections_per_client: int = Field(1024, ge=1)  # per client address
    # After SIGTERM, requests in flight get up to drain_s to complete (then are cancelled);
    # the lifespan's exit (NATS flushed, connections closed) takes at most ~0.5 s after it.
    # So a service exits within 2 s, before `trade-ops down` SIGKILLs it (after 2 s under
    # Docker: its grace of 3 s less valkey's and nats's second), whatever its clients do.
    drain_s: float = Field(1.0, gt=0)
    # The random id trade-ops gave this process (trade_ops/identity.py): /livez answers it,
    # so the CLI knows it talks to the process it started.
    instance_id: str | None = None
    # Credentials: each service is its own valkey ACL user and NATS user (its name).
    secrets_dir: str | None = None
    valkey_user: str | None = None
    valkey_password: SecretStr | None = None
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    # Admin endpoints (kill switch...) need it; unset, they are open on loopback only.
    operator_token: SecretStr | None = None
    # Account-scoped answers (services/kit/auth.py): per-account tokens (Authorization:
    # Bearer) decide the account; auto = on exactly when the service binds off loopback.
    account_tokens: Literal["auto", "on", "off"] = "auto"

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Self:
        for name in SECRET_FIELDS:
            if getattr(self, name) is None and (text := self.secret_file(name)) is not None:
                setattr(self, name, SecretStr(text))
        return self

    def secret_file(self, name: str) -> str | None:
        """The content of secrets_dir/NAME, or None when there is no such file."""
        if not self.secrets_dir:
            return None
        try:
            return (Path(self.secrets_dir) / name).read_text().strip()
        except FileNotFoundError:
            return None

    @property
    def on_loopback(self) -> bool:
        return is_loopback(self.host)


class FollowerSettings(KitSettings):
    """A service that only follows the flow (analytics, the lake sinks, views): it reads its
    NATS socket at most every 20 ms, under its consumers' linger so a batch still closes on
    time (A/B at 200 orders/s, 4 runs each: the stack's CPU an order 5.61 -> 5.43 ms,
    median; execution-quality 0.20 -> 0.16, event-writer 0.34 -> 0.28). ptrc is not one:
    risk's position limits follow its snapshots, and its publishes wait for acks that a
    paused socket would hold back."""

    nats_read_every_s: float = Field(0.02, ge=0.0, le=1.0)


def url_of(service: str, default: str | None = None) -> str:
    """Base URL of another service, as the supervisor exported it."""
    var = env.url_var(service)
    value = os.environ.get(var, default)
    if value is None:
        raise RuntimeError(f"{var} is not set: where does {service} run?")
    return value.rstrip("/")
