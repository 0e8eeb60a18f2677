"""Who is asking: the operator token for admin endpoints, account tokens for orders.

    Authorization: Bearer <token>

- Admin endpoints (kill switch, limits, resets) depend on `require_operator`: no token
  401, a wrong one 403. A service without an operator token configured serves them on
  loopback only (a laptop stack started by hand); off loopback it refuses (403).
- Order endpoints are scoped by account: `AccountScope.caller` says whose orders a
  request may see. The operator token sees every account. With account tokens on (by
  default when the service binds a non-loopback address) the account comes from the
  token alone; off, the caller names it (`X-Account` header or `account` query), and an
  order of another account is answered as if it did not exist.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import orjson
from fastapi import HTTPException, Request

from services.kit.settings import KitSettings

__all__ = ["ALL_ACCOUNTS", "AccountScope", "bearer", "require_operator", "token_matches"]

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


@dataclass
class AccountScope:
    """Whose orders a request may place, read or cancel."""

    operator_token: str | None
    enforce_tokens: bool
    token_digests: dict[str, str] = field(default_factory=dict)  # sha256(token) -> account

    @classmethod
    def from_settings(cls, settings: KitSettings, mode: str) -> AccountScope:
        """`mode` auto|on|off: auto is on exactly when the service binds off loopback."""
        raw = settings.secret_file("account_tokens")
        by_account: dict[str, str] = orjson.loads(raw) if raw else {}
        enforce = mode == "on" or (mode == "auto" and not settings.on_loopback)
        token = settings.operator_token.get_secret_value() if settings.operator_token else None
        return cls(token, enforce, {digest: account for account, digest in by_account.items()})

    def token_account(self, token: str | None) -> str | None:
        """The account of a token (raises 401/403), or ALL_ACCOUNTS for the operator."""
        if token is None:
            raise _unauthorized("send your account token as `Authorization: Bearer ...`")
        if self.operator_token is not None and token_matches(token, self.operator_token):
            return ALL_ACCOUNTS
        account = self.token_digests.get(hashlib.sha256(token.encode()).hexdigest())
        if account is None:
            raise HTTPException(403, detail="the token is not valid for any account")
        return account

    def caller(self, request: Request, default: str = "default") -> str | None:
        """The account a read or cancel acts for; ALL_ACCOUNTS for the operator."""
        token = bearer(request.headers.get("authorization"))
        if self.enforce_tokens or token is not None:
            return self.token_account(token)
        return request.headers.get("x-account") or request.query_params.get("account") or default
