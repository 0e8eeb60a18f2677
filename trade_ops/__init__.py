"""trade-ops: operations toolkit and health doctor for a microservice trading backend."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trade-ops")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
