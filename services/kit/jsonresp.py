"""JSON responses: orjson for plain data (several times faster than the stdlib encoder), and
msgspec for the contract's Structs (FastAPI's encoder does not know them)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response

from services import contract

__all__ = ["JSONResponse", "encoded"]


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def encoded(content: msgspec.Struct | dict[str, object], status_code: int = 200) -> Response:
    """A Struct (or a dict holding Structs) answered as msgspec encodes it."""
    return Response(contract.encode(content), status_code=status_code, media_type="application/json")
