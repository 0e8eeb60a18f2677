"""Readable reasons for invalid input: one line per problem, "quantity: Input should be > 0".

Used by the app factory for FastAPI's validation errors and by handlers that parse raw
bodies themselves (pydantic `model_validate_json` on the hot path, or a contract Struct).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from services.kit.jsonresp import JSONResponse

__all__ = ["invalid_response", "reasons", "struct_reasons"]


def reasons(errors: Iterable[Any]) -> list[str]:
    out = []
    for e in errors:
        where = ".".join(str(p) for p in e["loc"])
        out.append(f"{where}: {e['msg']}" if where else str(e["msg"]))
    return out


def struct_reasons(exc: msgspec.ValidationError) -> list[str]:
    """msgspec's reason, in the same shape ("quantity: Expected `float` <= 1e12"): it
    names the first problem only."""
    text, at, where = str(exc).rpartition(" - at `$")
    if not at:
        return [where]
    return [f"{where.rstrip('`').lstrip('.')}: {text}"]


def invalid_response(errors: Iterable[Any], status_code: int = 422) -> JSONResponse:
    found = reasons(errors)
    return JSONResponse(status_code=status_code, content={"detail": "; ".join(found), "errors": found})
