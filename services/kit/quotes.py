"""The latest quote per symbol, from `market.tick.>`: for the venue and for marking P&L.

`QuoteBook.follow` replays the last tick of every symbol (LAST_PER_SUBJECT), so a
restarted service knows every quote at once, then follows new ticks. A tick without
sizes offers unlimited size.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext

from services.contract import TICK_ALL
from services.kit.follow import DeliverPolicy, follow

__all__ = ["Quote", "QuoteBook"]


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    ts: float  # the tick's epoch ms
    received: float  # local monotonic seconds

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2

    def to_json(self) -> dict[str, Any]:
        sizes = {k: (None if math.isinf(v) else v) for k, v in
                 (("bid_size", self.bid_size), ("ask_size", self.ask_size))}
        return {"symbol": self.symbol, "bid": self.bid, "ask": self.ask, "mid": self.mid,
                "ts": self.ts, **sizes}


def _size(value: Any) -> float:
    size = float(value or 0)
    return size if size > 0 else math.inf


class QuoteBook:
    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}

    def update(self, tick: dict[str, Any]) -> Quote | None:
        """Take a tick; None (ignored) when it is not a usable two-sided quote."""
        try:
            symbol, bid, ask = str(tick["symbol"]), float(tick["bid"]), float(tick["ask"])
            quote = Quote(symbol, bid, ask, _size(tick.get("bid_size")), _size(tick.get("ask_size")),
                          float(tick.get("ts") or 0), time.monotonic())
        except (KeyError, TypeError, ValueError):
            return None
        if not (0 < bid <= ask) or not symbol:
            return None
        self.quotes[symbol] = quote
        return quote

    def get(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)

    def age_s(self) -> float | None:
        """Seconds since the newest tick arrived; None before the first."""
        if not self.quotes:
            return None
        return time.monotonic() - max(q.received for q in self.quotes.values())

    async def follow(self, js: JetStreamContext,
                     on_quote: Callable[[Quote], Awaitable[None]] | None = None) -> Any:
        async def handle(tick: dict[str, Any], _msg: Any) -> None:
            quote = self.update(tick)
            if quote is not None and on_quote is not None:
                await on_quote(quote)

        return await follow(js, TICK_ALL, handle, DeliverPolicy.LAST_PER_SUBJECT)
