"""All terminal output goes through here: one Rich console for humans (stderr when a
command prints JSON, so stdout holds the JSON document and nothing else)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import orjson
from rich.console import Console

from trade_ops.errors import ExitCode, TradeOpsError

__all__ = ["abort", "cli_errors", "console", "err_console", "print_json", "use_stderr"]

P = ParamSpec("P")
R = TypeVar("R")

_stdout_console = Console(highlight=False)
console = _stdout_console
err_console = Console(stderr=True, highlight=False)


def use_stderr() -> None:
    """Route human output to stderr (for `--json` runs)."""
    global console
    console = err_console


def print_json(document: object) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def abort(error: TradeOpsError | str, code: ExitCode | None = None) -> NoReturn:
    """The one exit path for errors: a clear message on stderr, a named exit code."""
    import typer

    if isinstance(error, TradeOpsError):
        err_console.print(f"[bold red]error:[/] {error.message}")
        if error.detail:
            err_console.print(error.detail, markup=False, highlight=False)
        raise typer.Exit(int(code if code is not None else error.exit_code))
    err_console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(int(code if code is not None else ExitCode.CANNOT_RUN))


def cli_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate every command: library errors become a clean message and exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        global console
        console = _stdout_console  # each command starts on stdout, whatever ran before it
        try:
            return command(*args, **kwargs)
        except TradeOpsError as exc:
            abort(exc)

    return wrapper
