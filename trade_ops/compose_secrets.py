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

from services import contract
from trade_ops import credentials
from trade_ops.stack import Stack, load_stack

__all__ = ["IN_CONTAINER", "NATS_CONF", "NATS_SERVER_CONF", "VALKEY_CONF", "compose_secrets",
           "service_env", "service_secrets", "write_files"]

IN_CONTAINER = "/run/secrets"
VALKEY_CONF, NATS_CONF = "valkey_conf", "nats_conf"  # valkey.conf and nats.conf, as mounted there
NATS_SERVER_CONF = "nats_server_conf"  # infra.nats_server_conf, which includes NATS_CONF
HOST_DIR = "./secrets"  # relative to compose.yaml


def _uses_valkey(name: str) -> bool:
    from trade_ops import permissions

    return permissions.uses_valkey(name)


def _service_files(name: str) -> list[str]:
    if name == credentials.ADMIN_USER:  # the operator's topology job (compose.py)
        return ["nats_password"]
    files = ["valkey_password"] if _uses_valkey(name) else []
    files.append("nats_password")
    if name in credentials.OPERATOR_SERVICES:
        files.append("operator_token")
    needs = contract.TOPOLOGY.get(name)
    if needs is not None and needs.accounts:
        files.append("account_tokens")
        if name not in credentials.OPERATOR_SERVICES:
            files.append("operator_token_digest")
    return files


def compose_secrets(stack: Stack) -> dict[str, dict[str, str]]:
    """The top-level `secrets:` of compose.yaml: every file, by reference."""
    out = {VALKEY_CONF: {"file": f"{HOST_DIR}/valkey.conf"}, NATS_CONF: {"file": f"{HOST_DIR}/nats.conf"}}
    for name in (credentials.ADMIN_USER, *(s.name for s in stack.services)):
        for f in _service_files(name):
            out[f"{name}_{f}"] = {"file": f"{HOST_DIR}/{name}/{f}"}
    return out


def service_secrets(name: str) -> list[dict[str, str]]:
    """A service's `secrets:`: its own files only, under the names its settings read."""
    return [{"source": f"{name}_{f}", "target": f} for f in _service_files(name)]


def service_env(name: str) -> dict[str, str]:
    return credentials.secrets_env(IN_CONTAINER, name)


def write_files(directory: Path, stack: Stack) -> Path:
    """./secrets for compose: the run directory layout with `directory` as the run dir."""
    credentials.prepare(directory, stack)
    return credentials.credentials_dir(directory)


if __name__ == "__main__":
    written = write_files(Path("."), load_stack())
    sys.stdout.write(f"wrote {written}/ (keep it out of version control)\n")
