"""One module per CLI command; each is a thin layer over the library."""

from __future__ import annotations

import importlib

import typer

__all__ = ["register_all"]

# Each module here exposes `register(app)`. Modules import their heavy libraries inside
# the command functions, so `trade-ops --help` stays instant.
COMMAND_MODULES: tuple[str, ...] = ()


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"trade_ops.commands.{name}").register(app)
