"""One module per CLI command; each is a thin layer over the library.

Every module in this package that defines `register(app)` is a command (or a group of
commands); adding a command is adding a module. Modules import their heavy libraries
inside the command functions, so `trade-ops --help` stays instant.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

__all__ = ["register_all"]


def register_all(app: typer.Typer) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)
