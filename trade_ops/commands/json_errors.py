"""`--json` in every outcome: an error becomes one JSON document on stdout too
(`{"status": "error", "exit_code": 3, "message": ...}`), beside the message on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from trade_ops.errors import TradeOpsError

__all__ = ["error_document", "json_errors"]


def error_document(exc: TradeOpsError) -> dict[str, object]:
    doc: dict[str, object] = {"status": "error", "exit_code": int(exc.exit_code), "message": exc.message}
    if exc.detail:
        doc["detail"] = exc.detail
    return doc


@contextlib.contextmanager
def json_errors(json_out: bool) -> Iterator[None]:
    """Around a command's body: with --json, a library error is also printed as a document."""
    try:
        yield
    except TradeOpsError as exc:
        if json_out:
            from trade_ops import console as out

            out.print_json(error_document(exc))
        raise
