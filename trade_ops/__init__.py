"""trade-ops: operations toolkit and health doctor for a microservice trading backend."""

from __future__ import annotations

__all__ = ["__version__"]


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
