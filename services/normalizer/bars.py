"""OHLCV bars from ticks, pure: no I/O, no clock of its own.

A bar covers [start, start + width) on the clock (a 1m bar starts on a whole minute of
the tick's `ts`); open/high/low/close come from the tick's `last`, volume sums the
tick's `volume`, trades counts ticks. A bar closes when a tick of a later bar arrives,
or when the symbol's clock passes its end by `grace_ms`. A symbol's clock is its last
tick's `ts` moved on by the wall time since that tick arrived, so a quiet symbol still
closes its bars, and replayed ticks keep their own time. A tick older than the last
closed bar of its symbol is late and dropped (counted), so a bar is never emitted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.contract import Bar

__all__ = ["INTERVALS", "BarBuilder", "add_trade", "bar_start", "new_bar"]

INTERVALS: dict[str, int] = {"1m": 60_000, "5m": 300_000}


def bar_start(ts_ms: float, width_ms: int) -> int:
    return int(ts_ms // width_ms) * width_ms


def new_bar(symbol: str, interval: str, start: int, price: float) -> Bar:
    """An open bar: its id names it; its `ts` is set when it is published."""
    return Bar(id=f"{symbol}-{interval}-{start}", symbol=symbol, interval=interval, start=start,
               end=start + INTERVALS[interval], open=price, high=price, low=price, close=price)


def add_trade(bar: Bar, price: float, volume: float) -> None:
    bar.high = max(bar.high, price)
    bar.low = min(bar.low, price)
    bar.close = price
    bar.volume += volume
    bar.trades += 1


@dataclass
class _Clock:
    tick_ts: float  # the symbol's last tick time
    arrived: float  # wall time (ms) it arrived

    def now(self, wall_ms: float) -> float:
        return self.tick_ts + max(0.0, wall_ms - self.arrived)


@dataclass
class BarBuilder:
    """The open bar of every symbol for one interval."""

    interval: str
    grace_ms: float = 2_000.0
    open: dict[str, Bar] = field(default_factory=dict)
    closed_until: dict[str, int] = field(default_factory=dict)  # end of the last closed bar
    clocks: dict[str, _Clock] = field(default_factory=dict)
    late: int = 0

    @property
    def width(self) -> int:
        return INTERVALS[self.interval]

    def add(self, symbol: str, ts: float, price: float, volume: float, wall_ms: float) -> list[Bar]:
        """Apply one tick; returns the bars it closed (at most one)."""
        if ts < self.closed_until.get(symbol, 0):
            self.late += 1
            return []
        start = bar_start(ts, self.width)
        current = self.open.get(symbol)
        if current is not None and start < current.start:
            self.late += 1
            return []
        clock = self.clocks.get(symbol)
        if clock is None or ts >= clock.tick_ts:
            self.clocks[symbol] = _Clock(ts, wall_ms)
        closed: list[Bar] = []
        if current is not None and start >= current.end:
            closed.append(self._close(symbol))
            current = None
        if current is None:
            current = self.open[symbol] = new_bar(symbol, self.interval, start, price)
        add_trade(current, price, volume)
        return closed

    def due(self, wall_ms: float) -> list[Bar]:
        """Close the bars whose symbol clock passed their end by the grace period."""
        return [self._close(symbol) for symbol, bar in list(self.open.items())
                if self.clocks[symbol].now(wall_ms) >= bar.end + self.grace_ms]

    def _close(self, symbol: str) -> Bar:
        bar = self.open.pop(symbol)
        self.closed_until[symbol] = bar.end
        return bar
