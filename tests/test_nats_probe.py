"""The kit's NATS health probe survives a stopped server (SIGSTOP, then SIGCONT).

nats-py's `flush(timeout)` cancels its PONG future on a timeout but leaves it queued;
the PONG that arrives once the server runs again is set on that cancelled future, the
InvalidStateError ends the client's read loop, and the connection never reads again
while it looks connected (every request and JetStream publish then times out). That is
how a 25 s NATS stop under load left the whole stack stalled for minutes. The probe is
a request, whose late answer nats-py drops harmlessly.
"""

from __future__ import annotations

import asyncio
import os
import signal

import nats
import pytest

from services.kit import Kit, KitSettings, bus
from services.kit.app import _nats_check
from services.kit.metrics import Metrics
from tests.helpers import Proc, wait_until

pytestmark = pytest.mark.process


def _stopped(pid: int) -> bool:
    # The signal is delivered when the kernel next schedules the process: until then it
    # may still answer what is already in its socket.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


async def test_health_probe_after_a_stopped_server_leaves_the_connection_working(fresh_nats: Proc) -> None:
    nc = await bus.connect(fresh_nats.url, "probe-test")
    kit = Kit(settings=KitSettings(service="probe-test"), metrics=Metrics("probe-test"))
    kit.opened_nats = nc
    js = nc.jetstream()
    await js.add_stream(name="PROBE", subjects=["probe.>"])
    try:
        assert (await _nats_check(kit)).status == "pass"
        os.kill(fresh_nats.popen.pid, signal.SIGSTOP)
        assert wait_until(lambda: _stopped(fresh_nats.popen.pid), timeout=2)
        try:
            with pytest.raises((asyncio.TimeoutError, nats.errors.TimeoutError)):
                await asyncio.wait_for(_nats_check(kit), 1.5)
        finally:
            os.kill(fresh_nats.popen.pid, signal.SIGCONT)
        await asyncio.sleep(0.3)  # the late answer to the timed-out probe arrives now
        # The connection still reads: a round trip and a JetStream publish are answered.
        assert (await _nats_check(kit)).status == "pass"
        ack = await js.publish("probe.one", b"x", timeout=2)
        assert ack.seq == 1
    finally:
        os.kill(fresh_nats.popen.pid, signal.SIGCONT)
        await nc.close()
