"""Bars on a hand-built tick sequence: boundaries on the clock, OHLCV, late ticks, quiet symbols."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from services.normalizer.bars import BarBuilder, bar_start

pytestmark = pytest.mark.unit

M = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a whole minute and a whole 5 minutes


def feed(builder: BarBuilder, ticks: Sequence[tuple[float, float, float]]) -> list[dict[str, Any]]:
    closed: list[dict[str, Any]] = []
    for ts, price, volume in ticks:
        closed += [msgspec.to_builtins(b) for b in builder.add("AAPL", ts, price, volume, wall_ms=ts)]
    return closed


# (ts, last, volume): minute 0 has four ticks, minute 1 one, minute 3 one (minute 2 is empty)
TICKS = [
    (T0 + 0, 100.0, 1.0),
    (T0 + 10_000, 102.5, 2.0),
    (T0 + 59_999, 99.0, 3.0),
    (T0 + 30_000, 101.0, 4.0),  # out of order inside the open bar: still this bar
    (T0 + M, 105.0, 5.0),  # exactly on the boundary: opens minute 1
    (T0 + 3 * M + 1, 104.0, 6.0),
]


def test_bar_start_is_on_the_clock() -> None:
    assert bar_start(T0 + 59_999, M) == T0
    assert bar_start(T0 + M, M) == T0 + M
    assert bar_start(T0 + 299_999, 5 * M) == T0


def test_one_minute_bars_from_hand_built_ticks() -> None:
    closed = feed(BarBuilder("1m"), TICKS)
    assert [(b["start"], b["end"]) for b in closed] == [(T0, T0 + M), (T0 + M, T0 + 2 * M)]
    first, second = closed
    assert (first["open"], first["high"], first["low"], first["close"]) == (100.0, 102.5, 99.0, 101.0)
    assert first["volume"] == 10.0 and first["trades"] == 4
    assert first["id"] == f"AAPL-1m-{T0}" and first["interval"] == "1m" and first["symbol"] == "AAPL"
    assert (second["open"], second["high"], second["low"], second["close"], second["volume"]) == (
        105.0, 105.0, 105.0, 105.0, 5.0)


def test_five_minute_bar_holds_them_all() -> None:
    builder = BarBuilder("5m")
    assert feed(builder, TICKS) == []
    bar = builder.open["AAPL"]
    assert (bar.start, bar.end) == (T0, T0 + 5 * M)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (
        100.0, 105.0, 99.0, 104.0, 21.0, 6)


def test_late_tick_after_close_is_dropped_not_a_second_bar() -> None:
    builder = BarBuilder("1m")
    feed(builder, TICKS[:5])  # minute 0 closed
    assert feed(builder, [(T0 + 5_000, 1.0, 1.0)]) == []
    assert builder.late == 1 and builder.open["AAPL"].start == T0 + M


def test_quiet_symbol_closes_on_its_own_clock() -> None:
    builder = BarBuilder("1m", grace_ms=2_000)
    # Replayed ticks from long ago arrive now: their bar closes 62 s of wall time later.
    builder.add("MSFT", T0 + 1_000, 50.0, 1.0, wall_ms=10 * T0)
    assert builder.due(10 * T0 + 60_000) == []
    [bar] = builder.due(10 * T0 + 61_000)
    assert (bar.symbol, bar.start, bar.close) == ("MSFT", T0, 50.0)
    assert builder.open == {}
