"""`up`'s side of the operator's JetStream topology: services/provision.py makes every
stream and durable consumer of the contract; this runs it on a stack's NATS as the CLI's own
(operator) user. compose's one-shot and the Kubernetes Job run `python -m services.provision`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trade_ops.stack import Stack

__all__ = ["COMPOSE_JOB", "PROVISION_COMMAND", "provision_stack"]

COMPOSE_JOB = "topology"  # compose's one-shot service (trade_ops/compose.py), a Kubernetes Job alike
PROVISION_COMMAND = ["python", "-m", "services.provision"]  # what it runs, in the service image


def provision_stack(run_dir: Path, stack: Stack) -> None:
    """`up`, before it starts a service: the topology on the stack's NATS, as the CLI's own
    (operator) user; a StartupError when NATS refuses or does not answer."""
    # nats-py is imported here, not with this module: compose.py reads the names above, and
    # doctor imports compose.py for its container labels (nats-py: ~30 ms of every start).
    from services.provision import provision_url
    from trade_ops import credentials, infra
    from trade_ops.errors import StartupError

    login = credentials.nats_login(run_dir)
    scale = infra.stream_bytes_scale(run_dir)
    try:
        asyncio.run(provision_url(stack.nats_url(), login.get("user"), login.get("password"), scale=scale))
    except Exception as exc:
        raise StartupError(f"could not make the streams and durable consumers on {stack.nats_url()}: "
                           f"{type(exc).__name__}: {exc}".rstrip(": "),
                           detail="see `trade-ops logs nats`") from None
