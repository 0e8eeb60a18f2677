"""The trade-ops command line: wires the commands in trade_ops/commands together."""

from __future__ import annotations

import typer

from trade_ops.helptext import TradeOpsGroup

__all__ = ["app", "main"]

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
    app()
