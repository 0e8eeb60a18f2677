"""Supervised background work: a task that dies is restarted with backoff, and /health
says warn while it recovers and fail when it keeps dying (issue 13: live-gateway's outbox
flusher died on the first Valkey error, was never restarted, and /health said pass)."""

from __future__ import annotations

import asyncio

import pytest

from services.kit import Kit, KitSettings
from services.kit import supervise as sup
from services.kit.metrics import Metrics

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "BACKOFF_S", (0.01, 0.04))


def _kit() -> Kit:
    return Kit(settings=KitSettings(), metrics=Metrics("test"))


def test_a_task_that_dies_once_is_restarted_and_health_warns_then_passes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple[int, str, str]:
        kit, runs = _kit(), []

        async def flaky() -> None:
            runs.append(1)
            if len(runs) == 1:
                raise ConnectionError("valkey went away")
            await asyncio.sleep(3600)

        kit.spawn(flaky, "outbox")
        await asyncio.sleep(0.1)
        [during] = await kit._tasks_check()
        monkeypatch.setattr(sup, "WINDOW_S", 0.0)  # the death is now older than the window
        [after] = await kit._tasks_check()
        for t in kit.tasks:
            t.cancel()
        await asyncio.gather(*kit.tasks, return_exceptions=True)
        return len(runs), f"{during.status}: {during.output}", after.status

    runs, during, after = asyncio.run(main())
    assert runs == 2
    assert during.startswith("warn") and "valkey went away" in during
    assert after == "pass"


def test_a_task_that_keeps_dying_fails_health_and_backs_off() -> None:
    async def main() -> tuple[int, str]:
        kit, runs = _kit(), []

        async def broken() -> None:
            runs.append(1)
            raise RuntimeError("always")

        kit.spawn(broken, "broken")
        await asyncio.sleep(0.4)
        [check] = await kit._tasks_check()
        for t in kit.tasks:
            t.cancel()
        await asyncio.gather(*kit.tasks, return_exceptions=True)
        return len(runs), check.status

    runs, status = asyncio.run(main())
    assert status == "fail"
    # backoff 0.01, 0.02, 0.04, 0.04, ...: about 11 starts in 0.4 s, not hundreds
    assert sup.FAIL_AFTER <= runs < 20
