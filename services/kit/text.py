"""Valkey answers typed as redis-py declares them (`bytes | str`, or wider), as text."""

from __future__ import annotations

__all__ = ["raw", "text"]


def text(value: object) -> str:
    """A key or value read from Valkey (bytes: the client does not decode) as a str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def raw(value: object) -> bytes:
    """A value read from Valkey as bytes (what orjson and the stores parse)."""
    return value if isinstance(value, bytes) else str(value).encode()
