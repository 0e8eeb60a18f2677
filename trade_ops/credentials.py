"""The stack's credentials: generated once by `up` into RUN_DIR/secrets, never printed again.

    secrets/                   mode 0700; every file in it 0600 but valkey.conf
        credentials.json       all of them: read by the CLI (operator token, its own users)
        valkey.conf            ACL users (passwords as SHA-256 only; each service's keys and
                               commands: permissions.valkey_rules), default user off; 0644
        nats.conf              one user per service, its publish/subscribe permissions; the
                               operator's system-account user (NATS monitoring, nats_system.py)
        <service>/             the files that service's settings read (TRADE_OPS_SECRETS_DIR):
            valkey_password, nats_password, operator_token (risk, oms); a service that
            answers for accounts (contract `accounts`): account_tokens and, unless it holds
            the token, operator_token_digest (SHA-256 only)

Each service is its own valkey ACL user and its own NATS user, both named after it;
the CLI is the user `trade-ops`, and on NATS also `trade-ops-system` in the system account
(the only user that reads the server's monitoring: no service can). A stack started again
from the same run directory keeps its credentials, so services restarted alone still match
the servers already running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services import env
from trade_ops.rundir import SECRETS

if TYPE_CHECKING:
    from trade_ops.nats_system import SystemLogin
    from trade_ops.stack import Stack

__all__ = [
    "ACCOUNTS",
    "ADMIN_USER",
    "BENCH_USER",
    "OPERATOR_SERVICES",
    "SYSTEM_ACCOUNT",
    "SYSTEM_USER",
    "Credentials",
    "credentials_dir",
    "ensure",
    "load",
    "nats_login",
    "operator_headers",
    "prepare",
    "private_dir",
    "secret_values",
    "secrets_env",
    "service_env",
    "service_secrets_dir",
    "system_login",
    "token_digest",
    "valkey_login",
    "write_nats_config",
    "write_private",
    "write_service_files",
    "write_valkey_config",
]

ADMIN_USER = "trade-ops"  # the CLI's identity in valkey and NATS
# The operator's NATS user in the system account: the server's monitoring (connections,
# subscriptions, streams, consumers, health) as requests (nats_system.py); no HTTP port.
SYSTEM_USER = "trade-ops-system"
SYSTEM_ACCOUNT = "SYS"
BENCH_USER = "trade-ops-bench"  # bench workers and their coordinator on NATS (permissions.bench_permissions)
# Services with admin endpoints (kill switch, reads across accounts): they hold the token.
OPERATOR_SERVICES = frozenset({"risk", "oms"})
# Accounts given a token (OMS `account_tokens`): the default one, and the ones trade-ops
# itself trades on (bench, doctor).
ACCOUNTS = ("default", "bench", "doctor")


def _new_secret() -> str:
    return secrets.token_urlsafe(24)


def token_digest(token: str) -> str:
    """SHA-256 hex: what a server keeps instead of a password or token."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Credentials:
    operator_token: str
    valkey: dict[str, str] = field(default_factory=dict)  # user -> password
    nats: dict[str, str] = field(default_factory=dict)  # user -> password
    accounts: dict[str, str] = field(default_factory=dict)  # account -> token (OMS)

    def add_users(self, table: dict[str, str], names: Iterable[str]) -> bool:
        """A password for every named user still without one; whether any was added."""
        added = False
        for name in (ADMIN_USER, *names):
            if name not in table:
                table[name] = _new_secret()
                added = True
        return added

    def add_accounts(self, accounts: Iterable[str]) -> bool:
        added = False
        for account in accounts:
            if account not in self.accounts:
                self.accounts[account] = _new_secret()
                added = True
        return added


def credentials_dir(run_dir: Path) -> Path:
    return run_dir / SECRETS


def service_secrets_dir(run_dir: Path, service: str) -> Path:
    return credentials_dir(run_dir) / service


def private_dir(path: Path) -> None:
    """A folder only its owner may enter (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Created with `mode` before a byte is written, then moved into place atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def load(run_dir: Path) -> Credentials | None:
    """The credentials of the stack in `run_dir`, or None when it has none."""
    path = credentials_dir(run_dir) / "credentials.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return Credentials(operator_token=data["operator_token"], valkey=data.get("valkey", {}),
                       nats=data.get("nats", {}), accounts=data.get("accounts", {}))


def ensure(run_dir: Path, services: Iterable[str], accounts: Iterable[str] = (),
           valkey_users: Iterable[str] | None = None) -> tuple[Credentials, bool]:
    """The run directory's credentials, created or completed for `services` (NATS users;
    valkey users for `valkey_users`, by default the same); and whether the operator
    token is new (then `up` shows it, once)."""
    services = list(services)
    directory = credentials_dir(run_dir)
    private_dir(directory)
    creds = load(run_dir)
    fresh = creds is None
    if creds is None:
        creds = Credentials(operator_token=_new_secret())
    changed = (creds.add_users(creds.nats, services)
               | creds.add_users(creds.valkey, services if valkey_users is None else valkey_users)
               | creds.add_accounts(accounts))
    if fresh or changed:
        write_private(directory / "credentials.json", json.dumps(asdict(creds), indent=2))
    return creds, fresh


def secret_values(creds: Credentials) -> set[str]:
    """Every secret, to look for where none may appear (logs, reports, saved runs)."""
    return {creds.operator_token, *creds.valkey.values(), *creds.nats.values(),
            *creds.accounts.values()}


def write_service_files(run_dir: Path, service: str, creds: Credentials) -> Path:
    """The secrets directory `service` reads (its TRADE_OPS_SECRETS_DIR)."""
    directory = service_secrets_dir(run_dir, service)
    private_dir(directory)
    if service in creds.valkey:  # only services that use valkey are valkey users
        write_private(directory / "valkey_password", creds.valkey[service])
    write_private(directory / "nats_password", creds.nats[service])
    if service in OPERATOR_SERVICES:
        write_private(directory / "operator_token", creds.operator_token)
    if _answers_for_accounts(service):  # it recognises the tokens; only oms and risk may use one
        if service not in OPERATOR_SERVICES:
            write_private(directory / "operator_token_digest", token_digest(creds.operator_token))
        digests = {account: token_digest(token) for account, token in creds.accounts.items()}
        write_private(directory / "account_tokens", json.dumps(digests))
    return directory


def _answers_for_accounts(service: str) -> bool:
    from services import contract

    needs = contract.TOPOLOGY.get(service)
    return needs is not None and needs.accounts


def write_valkey_config(run_dir: Path, creds: Credentials) -> Path:
    """valkey.conf: no anonymous user, one ACL user per service, protected mode on.

    Passwords are given as their SHA-256 (`#hex`), so the file holds no secret.
    """
    from trade_ops import permissions  # the contract, imported only when a stack starts

    lines = ["protected-mode yes", "user default off"]
    for user, password in sorted(creds.valkey.items()):
        rules = "~* &* +@all" if user == ADMIN_USER else permissions.valkey_rules(user)
        lines.append(f"user {user} on #{token_digest(password)} {rules}")
    path = credentials_dir(run_dir) / "valkey.conf"
    # 0644: it holds no secret, and valkey's official image reads it as its own user.
    write_private(path, "\n".join(lines) + "\n", 0o644)
    return path


Permissions = dict[str, Any]


def write_nats_config(run_dir: Path, creds: Credentials,
                      permissions: dict[str, Permissions] | None = None) -> Path:
    """nats.conf: no anonymous client; each user with its permissions (none: the operator,
    and any user `permissions` does not name, which may do everything). SYSTEM_USER alone
    is in the system account; the others share the global one, where the streams are."""
    users = []
    for user, password in sorted(creds.nats.items()):
        if user == SYSTEM_USER:
            continue
        entry: dict[str, Any] = {"user": user, "password": password}
        if permissions and user != ADMIN_USER and user in permissions:
            entry["permissions"] = permissions[user]
        users.append(entry)
    # nats.conf accepts JSON for its values; quoted strings are never variables ($JS...).
    text = "authorization {\n  users = " + json.dumps(users, indent=2) + "\n}\n"
    if SYSTEM_USER in creds.nats:
        system = [{"user": SYSTEM_USER, "password": creds.nats[SYSTEM_USER]}]
        text += (f"accounts {{\n  {SYSTEM_ACCOUNT} {{\n    users = {json.dumps(system)}\n  }}\n}}\n"
                 f"system_account = {SYSTEM_ACCOUNT}\n")
    path = credentials_dir(run_dir) / "nats.conf"
    write_private(path, text)
    return path


def secrets_env(secrets_dir: str, service: str) -> dict[str, str]:
    """The settings that point a service at its own credentials in `secrets_dir` (no secret
    in them): the process runtime's and compose's alike."""
    return {env.SECRETS_DIR: secrets_dir, env.VALKEY_USER: service, env.NATS_USER: service}


def service_env(run_dir: Path, service: str) -> dict[str, str]:
    """The settings that point a service at its own credentials (no secret in them)."""
    return secrets_env(str(service_secrets_dir(run_dir, service).resolve()), service)


def prepare(run_dir: Path, stack: Stack) -> tuple[Credentials, bool]:
    """Everything `up` needs before it starts a process: the credentials (new or kept),
    the servers' configurations and each service's secrets directory; and whether the
    credentials are new."""
    from trade_ops import permissions  # the contract, imported only when a stack starts

    names = [s.name for s in stack.services]
    valkey_users = [n for n in names if permissions.uses_valkey(n)]
    creds, fresh = ensure(run_dir, [*names, BENCH_USER, SYSTEM_USER], ACCOUNTS, valkey_users)
    write_valkey_config(run_dir, creds)
    write_nats_config(run_dir, creds, {**permissions.nats_permissions(names),
                                       BENCH_USER: permissions.bench_permissions(BENCH_USER)})
    for name in names:
        write_service_files(run_dir, name, creds)
    operator = service_secrets_dir(run_dir, ADMIN_USER)  # compose's topology job reads it
    private_dir(operator)
    write_private(operator / "nats_password", creds.nats[ADMIN_USER])
    return creds, fresh




def operator_headers(run_dir: Path) -> dict[str, str]:
    """What the CLI sends to a stack's admin and order endpoints: the operator token, if any."""
    creds = load(run_dir)
    return {"Authorization": f"Bearer {creds.operator_token}"} if creds else {}


def nats_login(run_dir: Path) -> dict[str, str]:
    """nats.connect keyword arguments for the CLI's own NATS user ({} without credentials)."""
    creds = load(run_dir)
    if creds is None or ADMIN_USER not in creds.nats:
        return {}
    return {"user": ADMIN_USER, "password": creds.nats[ADMIN_USER]}


def system_login(run_dir: Path, nats_url: str) -> SystemLogin | None:
    """The operator's system-account login at `nats_url` (None: the stack has none)."""
    from trade_ops.nats_system import SystemLogin

    creds = load(run_dir)
    if creds is None or SYSTEM_USER not in creds.nats:
        return None
    return SystemLogin(nats_url, SYSTEM_USER, creds.nats[SYSTEM_USER])


def valkey_login(run_dir: Path) -> tuple[str, str] | None:
    """The CLI's own valkey ACL user and password, when the stack has credentials."""
    creds = load(run_dir)
    if creds is None or ADMIN_USER not in creds.valkey:
        return None
    return ADMIN_USER, creds.valkey[ADMIN_USER]
