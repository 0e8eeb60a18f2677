"""The simulated market: one random-walk quote per symbol and a rolling 24 h window.

Each step moves the mid by a log-normal shock, quotes a spread around it (bid < ask
always, after rounding to the symbol's tick size) and trades a random volume at the
bid or the ask. The 24 h window keeps one bucket per minute (1,440 of them), so
volume_24h, change_24h, high and low cost O(1) memory per tick rate.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services import contract

__all__ = ["START_PRICES", "Market", "Quote"]

START_PRICES = {"BTCUSDT": 65_000.0, "ETHUSDT": 3_500.0, "SOLUSDT": 150.0}
DEFAULT_START = 100.0
WINDOW_S = 24 * 3600
BUCKET_S = 60


def _tick_size(price: float) -> float:
    # Roughly 5 significant digits: 0.01 for 150, 1.0 for 65000.
    return 10.0 ** max(-8, math.floor(math.log10(price)) - 4)


@dataclass
class _Bucket:
    start: float
    open: float
    high: float
    low: float
    volume: float


@dataclass
class Quote:
    symbol: str
    mid: float
    seq: int
    bid: float = 0.0
    ask: float = 0.0
    last: float = 0.0
    bid_size: float = 0.0
    ask_size: float = 0.0
    volume: float = 0.0  # traded on the latest tick
    ts: float = 0.0  # epoch ms
    window: deque[_Bucket] = field(default_factory=deque)
    volume_24h: float = 0.0

    def tick_event(self) -> contract.Tick:
        """The `market.tick.{SYMBOL}` payload."""
        return contract.Tick(id=f"{self.symbol}-{self.seq}", symbol=self.symbol, seq=self.seq,
                             bid=self.bid, ask=self.ask, last=self.last, bid_size=self.bid_size,
                             ask_size=self.ask_size, volume=self.volume, ts=self.ts)

    def ticker(self) -> dict[str, Any]:
        """The seed's ticker (symbol, last_price, bid, ask, volume_24h, change_24h, timestamp
        as ISO-8601) and ours beside it (last, mid, spread, sizes, 24h range, seq, ts)."""
        oldest = self.window[0].open if self.window else self.last
        change = self.last - oldest
        timestamp = datetime.fromtimestamp(self.ts / 1000, UTC).isoformat(timespec="milliseconds")
        return {"symbol": self.symbol, "last_price": self.last, "bid": self.bid, "ask": self.ask,
                "volume_24h": round(self.volume_24h, 8), "change_24h": round(change, 10),
                "timestamp": timestamp.replace("+00:00", "Z"), "last": self.last,
                "mid": round((self.bid + self.ask) / 2, 10), "spread": round(self.ask - self.bid, 10),
                "bid_size": self.bid_size, "ask_size": self.ask_size,
                "change_24h_pct": round(change / oldest * 100, 4) if oldest else 0.0,
                "high_24h": max((b.high for b in self.window), default=self.last),
                "low_24h": min((b.low for b in self.window), default=self.last),
                "seq": self.seq, "ts": self.ts}


class Market:
    """The symbol universe and its quotes; `step` advances every symbol by one tick."""

    def __init__(self, symbols: list[str], volatility: float = 0.0005,
                 rng: random.Random | None = None, now: float | None = None) -> None:
        self.rng = rng or random.Random()
        self.volatility = volatility
        # seq starts at the epoch in ms and grows 10/s: a restarted gateway never reuses
        # an id inside JetStream's duplicate window.
        now = time.time() if now is None else now
        seq0 = int(now * 1000)
        self.quotes = {s: Quote(s, START_PRICES.get(s, DEFAULT_START), seq0) for s in symbols}
        for symbol in self.quotes:
            self.step(symbol, now)

    def get(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol.upper())

    def step(self, symbol: str, now: float | None = None) -> Quote:
        q = self.quotes[symbol]
        now = time.time() if now is None else now
        q.mid *= math.exp(self.rng.gauss(0.0, self.volatility))
        size = _tick_size(q.mid)
        half = max(size, q.mid * 0.00005)  # at least one tick either side: bid < ask
        q.bid = round(math.floor((q.mid - half) / size) * size, 8)
        q.ask = round(math.ceil((q.mid + half) / size) * size, 8)
        if q.ask <= q.bid:
            q.ask = round(q.bid + size, 8)
        q.last = q.ask if self.rng.random() < 0.5 else q.bid
        notional_unit = 1000.0 / q.mid  # sizes around $1k a level
        q.bid_size = round(self.rng.uniform(1, 50) * notional_unit, 6)
        q.ask_size = round(self.rng.uniform(1, 50) * notional_unit, 6)
        q.volume = round(self.rng.expovariate(1.0) * notional_unit, 6)
        q.seq += 1
        q.ts = now * 1000.0
        self._roll(q, now)
        return q

    def _roll(self, q: Quote, now: float) -> None:
        start = now - now % BUCKET_S
        if not q.window or q.window[-1].start != start:
            q.window.append(_Bucket(start, q.last, q.last, q.last, 0.0))
        bucket = q.window[-1]
        bucket.high = max(bucket.high, q.last)
        bucket.low = min(bucket.low, q.last)
        bucket.volume += q.volume
        q.volume_24h += q.volume
        while q.window and q.window[0].start <= now - WINDOW_S:
            q.volume_24h -= q.window.popleft().volume
