"""Every TRADE_OPS_* environment variable name, once: the services read them, the CLI
(supervisor, compose, options) sets them, and help texts and tests name them from here.

A service's own settings are its Settings fields with this prefix (TRADE_OPS_RISK_TIMEOUT_S
for `risk_timeout_s`): pydantic-settings reads those, so only the names code spells are here.
"""

from __future__ import annotations

__all__ = [
    "HOST",
    "LAKE_URI",
    "LOG_LEVEL",
    "NATS_URL",
    "PORT",
    "PORT_OFFSET",
    "PREFIX",
    "RUN_DIR",
    "SERVICE",
    "SINK_CRASH_AFTER_COMMITS",
    "STACK",
    "VALKEY_URL",
    "url_var",
]

PREFIX = "TRADE_OPS_"

SERVICE = PREFIX + "SERVICE"  # the service's name (set by `python -m services NAME`)
HOST = PREFIX + "HOST"  # the address it binds
PORT = PREFIX + "PORT"  # the port it binds
VALKEY_URL = PREFIX + "VALKEY_URL"
NATS_URL = PREFIX + "NATS_URL"
LAKE_URI = PREFIX + "LAKE_URI"
RUN_DIR = PREFIX + "RUN_DIR"
LOG_LEVEL = PREFIX + "LOG_LEVEL"
SINK_CRASH_AFTER_COMMITS = PREFIX + "SINK_CRASH_AFTER_COMMITS"  # tests: die between commit and ack

# The CLI's own.
STACK = PREFIX + "STACK"
PORT_OFFSET = PREFIX + "PORT_OFFSET"


def url_var(service: str) -> str:
    """`TRADE_OPS_URL_LIVE_GATEWAY` for `live-gateway`: how a service finds another."""
    return PREFIX + "URL_" + service.upper().replace("-", "_")
