"""Every TRADE_OPS_* environment variable name, once: the services read them, the CLI
(supervisor, compose, options) sets them, and help texts and tests name them from here.

A service's own settings are its Settings fields with this prefix (TRADE_OPS_RISK_TIMEOUT_S
for `risk_timeout_s`): pydantic-settings reads those, so only the names code spells are here.
"""

from __future__ import annotations

import re

__all__ = [
    "BASE_IMAGE",
    "DURABILITY",
    "HOST",
    "INSTANCE_ID",
    "LAKE_URI",
    "LOG_LEVEL",
    "NATS_URL",
    "NATS_USER",
    "PORT",
    "PORT_OFFSET",
    "PREFIX",
    "RUNTIME",
    "RUN_DIR",
    "SECRETS_DIR",
    "SERVICE",
    "SINK_CRASH_AFTER_COMMITS",
    "STACK",
    "VALKEY_URL",
    "VALKEY_USER",
    "header_var",
    "image_var",
    "setting_var",
    "url_var",
]

PREFIX = "TRADE_OPS_"

SERVICE = PREFIX + "SERVICE"  # the service's name (set by `python -m services NAME`)
INSTANCE_ID = PREFIX + "INSTANCE_ID"  # given by trade-ops to each process it starts; /livez answers it
HOST = PREFIX + "HOST"  # the address it binds
PORT = PREFIX + "PORT"  # the port it binds
VALKEY_URL = PREFIX + "VALKEY_URL"
NATS_URL = PREFIX + "NATS_URL"
LAKE_URI = PREFIX + "LAKE_URI"
RUN_DIR = PREFIX + "RUN_DIR"
LOG_LEVEL = PREFIX + "LOG_LEVEL"
SINK_CRASH_AFTER_COMMITS = PREFIX + "SINK_CRASH_AFTER_COMMITS"  # tests: die between commit and ack
# A service's own credentials: the directory of its secret files, its ACL and NATS users.
SECRETS_DIR = PREFIX + "SECRETS_DIR"
VALKEY_USER = PREFIX + "VALKEY_USER"
NATS_USER = PREFIX + "NATS_USER"

# The CLI's own.
STACK = PREFIX + "STACK"
PORT_OFFSET = PREFIX + "PORT_OFFSET"
DURABILITY = PREFIX + "DURABILITY"  # `up --durability`
RUNTIME = PREFIX + "RUNTIME"  # `up --runtime`
BASE_IMAGE = PREFIX + "BASE_IMAGE"  # `up --base-image`, and compose.yaml's build argument


def url_var(service: str) -> str:
    """`TRADE_OPS_URL_LIVE_GATEWAY` for `live-gateway`: how a service finds another."""
    return PREFIX + "URL_" + service.upper().replace("-", "_")


def image_var(kind: str) -> str:
    """`TRADE_OPS_VALKEY_IMAGE` for `valkey`: compose.yaml's choice of an infrastructure image."""
    return PREFIX + kind.upper() + "_IMAGE"


def setting_var(field: str) -> str:
    """`TRADE_OPS_ACCOUNT_TOKENS` for the settings field `account_tokens`, as pydantic-settings
    reads it: for messages that tell a user which variable to set."""
    return PREFIX + field.upper()


def header_var(header: str) -> str:
    """`TRADE_OPS_HEADER_AUTHORIZATION` for `Authorization`: where a command `bench` prints
    takes a secret header's value from (never written in the command itself)."""
    return PREFIX + "HEADER_" + re.sub(r"[^A-Za-z0-9]", "_", header).upper()
