"""trade-ops: operations toolkit and health doctor for a microservice trading backend."""

from __future__ import annotations

import sys

__all__ = ["__version__"]

# httpx imports its command-line client with itself (click, pygments, rich's syntax and
# progress): ~20 ms of CPU at the start of every trade-ops command that speaks HTTP, doctor's
# included, for a client no trade-ops process runs (encode/httpx#3547 moves it, open). Marked
# absent, httpx defines its `main` as a stub saying so (tests/test_import_diet.py checks that
# httpx still does both).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def __getattr__(name: str) -> str:
    # The version is looked up when asked for (--version, doctor's environment), not when any
    # trade_ops module is imported: importlib.metadata and its scan of the installed
    # distributions were ~15 ms of every command's start, `trade-ops --help` included.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("trade-ops")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0"
    globals()["__version__"] = found
    return found
