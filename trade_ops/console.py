"""All terminal output goes through here: one Rich console for humans (stderr when a
command prints JSON, so stdout holds the JSON document and nothing else).

With `--json` (`use_json()`), every outcome is one JSON document on stdout, always an
object carrying `status` and `exit_code` (`print_json` refuses any other): the command's
own on success (`envelope` adds the two), and on an error

    {"status": "error", "exit_code": 3, "message": "...", "detail": "..."}

printed by `abort`, the one exit path, whichever command failed.

The edges every command shares are kept here: Ctrl-C is exit 130, a reader that closed
stdout (`trade-ops logs | head -1`) ends the command quietly with 0, and output that is
not a terminal is never wrapped at 80 columns (a pipe gets whole lines).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec, TypeVar

import orjson
from rich.console import Console
from rich.text import Text

from trade_ops.errors import ExitCode, TradeOpsError

__all__ = ["abort", "cli_errors", "console", "envelope", "err_console", "error_document",
           "interrupted_quietly", "json_mode", "print_json", "use_json", "use_stderr"]

P = ParamSpec("P")
R = TypeVar("R")

PIPE_WIDTH = 10_000  # columns when the output is not a terminal: lines are never wrapped


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich exits 1 here; a reader that has what it wanted is no failure."""
        self.quiet = True
        _reader_gone()


def _make_console(stderr: bool) -> Console:
    made = _Console(stderr=stderr, highlight=False)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = PIPE_WIDTH  # Rich's default for a pipe is 80 columns, which cuts every line
    return made


_stdout_console = _make_console(stderr=False)
console = _stdout_console
err_console = _make_console(stderr=True)

_STATUS = {ExitCode.OK: "ok", ExitCode.FAILED: "fail", ExitCode.USAGE: "error", ExitCode.CANNOT_RUN: "error",
           ExitCode.INVALID: "invalid", ExitCode.INTERRUPTED: "interrupted"}


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


def envelope(document: dict[str, object], code: ExitCode | int) -> dict[str, object]:
    """The document with the envelope every --json output carries: `status` (the
    command's own word when it has one: pass, warn, fail; else one for the exit code)
    and `exit_code`, first."""
    status = document.get("status") or _STATUS.get(ExitCode(int(code)), "error")
    return {"status": status, "exit_code": int(code), **{k: v for k, v in document.items()
                                                          if k not in ("status", "exit_code")}}


def print_json(document: dict[str, object]) -> None:
    if not isinstance(document, dict) or "status" not in document or "exit_code" not in document:
        raise TypeError("a --json document is an object with status and exit_code (console.envelope)")
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
        except BrokenPipeError:
            _reader_gone()

    return wrapper


def _reader_gone() -> NoReturn:
    """stdout's reader left (`| head -1`): what it wanted it has; end quietly with 0, as
    `cat` ends under `head`. stdout is pointed at /dev/null so that Python's own flush at
    exit does not fail (and print) a second time."""
    import typer

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # a stdout with no file behind it (a test's capture)
        pass
    raise typer.Exit(0)


def interrupted_quietly() -> NoReturn:
    """Ctrl-C where it is how a command ends (logs -f, doctor --watch): what was shown
    stays, nothing more is printed, and the exit code is 130 as for any interrupt."""
    import typer

    raise typer.Exit(int(ExitCode.INTERRUPTED))

