"""`python -m services NAME`: serve one service with uvicorn (services/kit/server.py).

Host and port come from TRADE_OPS_HOST / TRADE_OPS_PORT, set by the supervisor.
"""

from __future__ import annotations

import os
import sys

from services import env
from services.kit.server import serve
from services.kit.settings import KitSettings

# uvicorn's own lines carry a timestamp too, in the format of the services' logging, so
# `trade-ops logs` interleaves every process by time.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"stamped": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "stamped",
                            "stream": "ext://sys.stdout"}},
    "loggers": {name: {"handlers": ["stdout"], "propagate": False}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
}

def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m services SERVICE", file=sys.stderr)
        return 2
    name = argv[0]
    module = "services." + name.replace("-", "_") + ".app"
    os.environ.setdefault(env.SERVICE, name)
    serve(
        f"{module}:app",
        KitSettings(),
        access_log=False,  # per-request logging costs more than the request on the hot path
        log_level=os.environ.get(env.LOG_LEVEL, "info"),
        log_config=LOG_CONFIG,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
