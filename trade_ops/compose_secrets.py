"""The credentials model on docker compose: secrets from files, never literals in compose.yaml.

    python -m trade_ops.compose_secrets      # writes ./secrets/ beside compose.yaml (0700/0600)

writes the same files `trade-ops up` writes into its run directory (credentials.py):
valkey.conf (ACL users, passwords as SHA-256 only), nats.conf (users and their permissions
from the contract) and one directory per service. compose.yaml declares each file as a
compose secret; a service gets only its own, mounted in /run/secrets under the names its
settings read (TRADE_OPS_SECRETS_DIR=/run/secrets). compose.py calls the functions here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trade_ops import credentials
from trade_ops.stack import Stack, load_stack

__all__ = ["IN_CONTAINER", "compose_secrets", "nats_args", "service_env", "service_secrets",
           "valkey_command", "valkey_healthcheck", "write_files"]

IN_CONTAINER = "/run/secrets"
HOST_DIR = "./secrets"  # relative to compose.yaml


def _uses_valkey(name: str) -> bool:
    from trade_ops import permissions

    return permissions.uses_valkey(name)


def _service_files(name: str) -> list[str]:
    files = ["valkey_password"] if _uses_valkey(name) else []
    files.append("nats_password")
    if name in credentials.OPERATOR_SERVICES:
        files.append("operator_token")
    if name == "oms":
        files.append("account_tokens")
    return files


def compose_secrets(stack: Stack) -> dict[str, dict[str, str]]:
    """The top-level `secrets:` of compose.yaml: every file, by reference."""
    out = {"valkey_conf": {"file": f"{HOST_DIR}/valkey.conf"}, "nats_conf": {"file": f"{HOST_DIR}/nats.conf"}}
    for s in stack.services:
        for f in _service_files(s.name):
            out[f"{s.name}_{f}"] = {"file": f"{HOST_DIR}/{s.name}/{f}"}
    return out


def service_secrets(name: str) -> list[dict[str, str]]:
    """A service's `secrets:`: its own files only, under the names its settings read."""
    return [{"source": f"{name}_{f}", "target": f} for f in _service_files(name)]


def service_env(name: str) -> dict[str, str]:
    return {"TRADE_OPS_SECRETS_DIR": IN_CONTAINER, "TRADE_OPS_VALKEY_USER": name,
            "TRADE_OPS_NATS_USER": name}


def valkey_command(port: int) -> list[str]:
    return ["valkey-server", f"{IN_CONTAINER}/valkey_conf", "--port", str(port), "--appendonly", "yes"]


def valkey_healthcheck(port: int) -> list[str]:
    # Up and serving answers NOAUTH to an anonymous ping: healthy, and no password in the check.
    return ["CMD-SHELL", f"valkey-cli -p {port} ping 2>&1 | grep -qE 'PONG|NOAUTH'"]


def nats_args() -> list[str]:
    return ["-c", f"{IN_CONTAINER}/nats_conf"]


def write_files(directory: Path, stack: Stack) -> Path:
    """./secrets for compose: the run directory layout with `directory` as the run dir."""
    credentials.prepare(directory, stack)
    return credentials.credentials_dir(directory)


if __name__ == "__main__":
    written = write_files(Path("."), load_stack())
    sys.stdout.write(f"wrote {written}/ (keep it out of version control)\n")
