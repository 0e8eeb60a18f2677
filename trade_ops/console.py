"""All terminal output goes through here: one Rich console for humans (stderr when a
command prints JSON, so stdout holds the JSON document and nothing else).

With `--json` (`use_json()`), every outcome is one JSON document on stdout: the
command's own on success, and on an error

    {"status": "error", "exit_code": 3, "message": "...", "detail": "..."}

printed by `abort`, the one exit path, whichever command failed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import orjson
from rich.console import Console
from rich.text import Text

from trade_ops.errors import ExitCode, TradeOpsError

__all__ = ["abort", "cli_errors", "console", "err_console", "error_document", "json_mode", "print_json",
           "use_json", "use_stderr"]

P = ParamSpec("P")
R = TypeVar("R")

_stdout_console = Console(highlight=False)
console = _stdout_console
err_console = Console(stderr=True, highlight=False)


_json_mode = False


def use_json() -> None:
    """`--json`: human output goes to stderr, errors become a JSON document on stdout."""
    global console, _json_mode
    console = err_console
    _json_mode = True


use_stderr = use_json  # the older name, still used by some commands


def json_mode() -> bool:
    return _json_mode


def error_document(message: str, code: ExitCode | int, detail: str | None = None) -> dict[str, object]:
    doc: dict[str, object] = {"status": "error", "exit_code": int(code), "message": message}
    if detail:
        doc["detail"] = detail
    return doc


def print_json(document: object) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def abort(error: TradeOpsError | str, code: ExitCode | None = None) -> NoReturn:
    """The one exit path for errors: a clear message on stderr, a named exit code."""
    import typer

    if isinstance(error, TradeOpsError):
        message, detail = error.message, error.detail
        exit_code = code if code is not None else error.exit_code
    else:
        message, detail = error, None
        exit_code = code if code is not None else ExitCode.CANNOT_RUN
    if exit_code == ExitCode.USAGE and not detail:  # every usage error comes with a way on
        detail = _help_hint()
    # The message as written: a bracket in it (a port list, a path) is not Rich markup.
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    if detail:
        err_console.print(detail, markup=False, highlight=False, emoji=False, soft_wrap=True)
    if _json_mode:
        print_json(error_document(message, exit_code, detail))
    raise typer.Exit(int(exit_code))


def _help_hint() -> str | None:
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    return f"see `{ctx.command_path} --help`" if ctx is not None else None


def cli_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate every command: library errors become a clean message and exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        global console, _json_mode
        console = _stdout_console  # each command starts on stdout, whatever ran before it
        _json_mode = False
        try:
            return command(*args, **kwargs)
        except TradeOpsError as exc:
            abort(exc)
        except KeyboardInterrupt:
            abort("interrupted", ExitCode.INTERRUPTED)

    return wrapper
