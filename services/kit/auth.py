"""Who is asking: the operator token for admin endpoints, account tokens for orders.

    Authorization: Bearer <token>

- Admin endpoints (kill switch, limits, resets) depend on `require_operator`: no token
  401, a wrong one 403. A service without an operator token configured serves them on
  loopback only (a laptop stack started by hand); off loopback it refuses (403).
- Every account-scoped answer (orders, fills, positions, P&L: the OMS, the venue, ptrc,
  risk, pnl, hot-cache) follows one rule, `AccountScope.caller`, through `account_of`:
  the operator token sees every account. With account tokens on (by default when the
  service binds a non-loopback address) the account comes from the token alone; off,
  the caller names it (`X-Account` header or `account` query), and an order of another
  account is answered as if it did not exist.
  A service that is no operator (ptrc, pnl...) holds the operator token's SHA-256 only
  (`operator_token_digest`), as it holds the account tokens': it recognises the token
  and cannot use it against another service.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import overload

import orjson
from fastapi import HTTPException, Request

from services.kit.settings import KitSettings

__all__ = ["ALL_ACCOUNTS", "AccountScope", "account_of", "bearer", "may_see", "require_operator",
           "token_matches"]

ALL_ACCOUNTS = None  # the scope of the operator: every account


def bearer(authorization: str | bytes | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value."""
    if not authorization:
        return None
    text = authorization.decode("latin-1") if isinstance(authorization, bytes) else authorization
    scheme, _, token = text.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def operator_allowed(settings: KitSettings, token: str | None) -> bool:
    """Raises 401/403 unless `token` is the operator's (or no token is needed here)."""
    expected = settings.operator_token
    if expected is None:
        if settings.on_loopback:
            return True
        raise HTTPException(403, detail="no operator token is configured on this service, "
                                        "and it listens off loopback: admin endpoints are closed")
    if token is None:
        raise _unauthorized("admin endpoint: send the operator token as `Authorization: Bearer ...` "
                            "(`trade-ops up` wrote it to RUN_DIR/secrets/credentials.json)")
    if not token_matches(token, expected.get_secret_value()):
        raise HTTPException(403, detail="the operator token is not valid")
    return True


def require_operator(request: Request) -> None:
    """FastAPI dependency of every admin endpoint."""
    operator_allowed(request.app.state.kit.settings, bearer(request.headers.get("authorization")))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class AccountScope:
    """Whose orders, fills and positions a request may place, read or cancel."""

    operator_digest: str | None  # sha256 of the operator token
    enforce_tokens: bool
    token_digests: dict[str, str] = field(default_factory=dict)  # sha256(token) -> account

    @classmethod
    def from_settings(cls, settings: KitSettings) -> AccountScope:
        """settings.account_tokens auto|on|off: auto is on exactly when the service binds off
        loopback. The operator token, or only its digest (a service that is no operator)."""
        raw = settings.secret_file("account_tokens")
        by_account: dict[str, str] = orjson.loads(raw) if raw else {}
        mode = settings.account_tokens
        enforce = mode == "on" or (mode == "auto" and not settings.on_loopback)
        operator = (_digest(settings.operator_token.get_secret_value()) if settings.operator_token
                    else settings.secret_file("operator_token_digest"))
        return cls(operator, enforce, {digest: account for account, digest in by_account.items()})

    def token_account(self, token: str | None) -> str | None:
        """The account of a token (raises 401/403), or ALL_ACCOUNTS for the operator."""
        if token is None:
            raise _unauthorized("send your account token as `Authorization: Bearer ...`")
        digest = _digest(token)
        if self.operator_digest is not None and token_matches(digest, self.operator_digest):
            return ALL_ACCOUNTS
        account = self.token_digests.get(digest)
        if account is None:
            raise HTTPException(403, detail="the token is not valid for any account")
        return account

    def caller(self, request: Request, default: str = "default") -> str | None:
        """The account a read or cancel acts for; ALL_ACCOUNTS for the operator."""
        token = bearer(request.headers.get("authorization"))
        if self.enforce_tokens or token is not None:
            return self.token_account(token)
        return request.headers.get("x-account") or request.query_params.get("account") or default

    def account_of(self, request: Request, asked: str | None) -> str | None:
        """The account an account-scoped read answers for: the operator gets the one it asks
        (`asked`; None: every account), anyone else its own, whatever the query names."""
        caller = self.caller(request)
        return asked if caller is ALL_ACCOUNTS else caller

    def may_see(self, request: Request, account: str | None) -> bool:
        """Whether the caller may see a record of `account` (another's is answered 404)."""
        caller = self.caller(request)
        return caller is ALL_ACCOUNTS or account == caller


def _scope(request: Request) -> AccountScope:
    scope: AccountScope = request.app.state.kit.scope
    return scope


@overload
def account_of(request: Request, asked: str) -> str: ...
@overload
def account_of(request: Request, asked: None) -> str | None: ...
def account_of(request: Request, asked: str | None) -> str | None:
    """`AccountScope.account_of` with the service's own scope (its kit's): the account an
    account-scoped read answers for (None: every account, for the operator only)."""
    return _scope(request).account_of(request, asked)


def may_see(request: Request, account: str | None) -> bool:
    """`AccountScope.may_see` with the service's own scope: a record of `account`."""
    return _scope(request).may_see(request, account)
