"""The trade-ops command line: wires the commands in trade_ops/commands together."""

from __future__ import annotations

import typer

from trade_ops.helptext import TradeOpsGroup

__all__ = ["app", "leave", "main"]

app = typer.Typer(
    name="trade-ops",
    help="Run, diagnose and measure a microservice trading backend.",
    no_args_is_help=True,
    cls=TradeOpsGroup,  # every command's help shows defaults and env vars (see helptext.py)
    add_completion=True,  # trade-ops --install-completion
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from trade_ops import __version__

        typer.echo(f"trade-ops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Run, diagnose and measure a microservice trading backend."""


def _register() -> None:
    # Each command module exposes `register(app)`; adding a command is one line in
    # trade_ops/commands/__init__.py.
    from trade_ops.commands import register_all

    register_all(app)


_register()


def main() -> None:
    """The console script (and `python -m trade_ops`)."""
    try:
        app()
    except SystemExit as done:
        code = done.code
    else:
        code = 0
    if code is None or isinstance(code, int):
        leave(code or 0)
    raise SystemExit(code)


def leave(code: int) -> None:
    """End the process once the command is done, as mypy does (mypy.util.hard_exit): its exit
    handlers run and its output is flushed, and the interpreter's teardown, which frees every
    object one by one, is skipped: 40-70 ms of every doctor run, whose budget is a second. A
    thread still running is left to the interpreter's own exit, which waits for it."""
    import atexit
    import contextlib
    import os
    import sys
    import threading

    if threading.active_count() > 1:
        raise SystemExit(code)
    atexit._run_exitfuncs()  # what a normal exit runs: logging's flush, temporary directories' cleanup
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head): no one reads it
            stream.flush()
    os._exit(code)
