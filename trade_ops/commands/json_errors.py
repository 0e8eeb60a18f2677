"""`--json` in every outcome: an error becomes one JSON document on stdout too
(`{"status": "error", "exit_code": 3, "message": ...}`), beside the message on stderr.

The document itself is made and printed by trade_ops.console (`use_json()` then `abort`,
the one exit path); this wraps a command body for the errors that do not reach it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from trade_ops.errors import TradeOpsError

__all__ = ["error_document", "json_errors"]


def error_document(exc: TradeOpsError) -> dict[str, object]:
    from trade_ops import console

    return console.error_document(exc.message, exc.exit_code, exc.detail)


@contextlib.contextmanager
def json_errors(json_out: bool) -> Iterator[None]:
    """Around a command's body: with --json, a library error is also printed as a document
    (once: when the console is in JSON mode, `abort` prints it)."""
    try:
        yield
    except TradeOpsError as exc:
        from trade_ops import console as out

        if json_out and not out.json_mode():
            out.print_json(error_document(exc))
        raise
