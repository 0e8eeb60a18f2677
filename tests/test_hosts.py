"""One loopback rule for the services and trade-ops (doctor's posture, bench's targets)."""

from __future__ import annotations

import pytest

from services.hosts import is_loopback
from services.kit.settings import KitSettings
from trade_ops.bench.targets import _check_loopback
from trade_ops.errors import UsageError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("no-such-host.invalid", False),
])
def test_loopback_is_one_rule_everywhere(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    # a service's bind address is judged by the same rule (it was "localhost" by name only)
    assert KitSettings(service="x", host=host).on_loopback is loopback
    if loopback:
        assert _check_loopback(host, allow_remote=False)
    elif host != "no-such-host.invalid":
        with pytest.raises(UsageError, match="not loopback"):
            _check_loopback(host, allow_remote=False)
