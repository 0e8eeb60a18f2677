"""The latest quote per symbol, from `market.tick.>`: for the venue and for marking P&L.

`QuoteBook.follow` reads the last tick of every symbol (LAST_PER_SUBJECT), so a
restarted service knows every quote at once, then follows new ticks in batches. A tick without
sizes offers unlimited size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services import contract
from services.kit import bus
from services.kit.follow import follow

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

    def age_s(self) -> float:
        """Seconds since this quote arrived here (this process's monotonic clock alone)."""
        return time.monotonic() - self.received

    def to_json(self) -> dict[str, Any]:
        sizes = {k: (None if math.isinf(v) else v) for k, v in
                 (("bid_size", self.bid_size), ("ask_size", self.ask_size))}
        return {"symbol": self.symbol, "bid": self.bid, "ask": self.ask, "mid": self.mid,
                "ts": self.ts, **sizes}


def _size(value: Any) -> float:
    size = float(value or 0)
    return size if size > 0 else math.inf


log = logging.getLogger(__name__)


class QuoteBook:
    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}
        self.ready = asyncio.Event()  # set once the last tick of every symbol is read

    def update(self, tick: contract.Tick) -> Quote | None:
        """Take a tick; None (ignored) when it is not a usable two-sided quote."""
        symbol, bid, ask = tick.symbol, tick.bid, tick.ask
        quote = Quote(symbol, bid, ask, _size(tick.bid_size), _size(tick.ask_size), tick.ts,
                      time.monotonic())
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

    async def follow(self, js: JetStreamContext, name: str,
                     on_quote: Callable[[Quote], Awaitable[None]] | None = None) -> None:
        """Keep the book, forever (run it as a task); `on_quote` sees each usable quote."""

        async def handle(msgs: list[Msg]) -> None:
            for _, tick in bus.decode_each(msgs, contract.Tick):  # the kit skips malformed ones
                quote = self.update(tick)
                if quote is not None and on_quote is not None:
                    await on_quote(quote)

        await follow(js, stream=contract.TICKS, subject=contract.TICK_ALL, handle=handle,
                     name=f"{name}-quotes", latest=True, ready=self.ready)

    async def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait until the last tick of every symbol is read (or `timeout`); whether it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout)
        return self.ready.is_set()
