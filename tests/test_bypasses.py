"""Canaries for the libraries bypassed for speed where the bypass uses a private part of
them: a new version that moves it fails here, in the unit tier, before a service reads its
socket a message at a time again. (The uvicorn/httptools canary is in test_http_limits.py.)

    services/kit/bus.py   nats-py's Client._transport, TcpTransport._io_writer and .read,
                          JetStreamContext._nc                   (measured with nats-py 2.16)
"""

from __future__ import annotations

import inspect
from importlib import metadata

import pytest
from nats.aio import transport
from nats.aio.client import Client
from nats.js.client import JetStreamContext

pytestmark = pytest.mark.unit

NATS_PY_MEASURED = "2.16."


def test_nats_py_is_the_version_the_read_batching_was_measured_with() -> None:
    version = metadata.version("nats-py")
    assert version.startswith(NATS_PY_MEASURED), version  # pyproject pins <2.17


def test_nats_py_keeps_the_private_parts_the_read_batching_uses() -> None:
    assert hasattr(Client(), "_transport")  # the connection's transport, None until connected
    tcp = inspect.getsource(transport.TcpTransport)
    assert "self._io_writer" in tcp and callable(transport.TcpTransport.read)
    assert "self._nc" in inspect.getsource(JetStreamContext.__init__)
