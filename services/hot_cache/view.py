"""The in-memory view behind `/snapshot`: latest tickers and bars, positions per account.

Fed by bus messages (`apply_*`, and ptrc's position snapshots into `positions`), read by
`snapshot`; no I/O, so a read never waits on another service. Positions are marked at
the latest mid (the last trade when a tick has no two-sided quote).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

from services import contract
from services.kit.position_book import PositionBook

__all__ = ["View"]

TICK_FIELDS = ("bid", "ask", "last", "bid_size", "ask_size", "ts")


class View:
    def __init__(self) -> None:
        self.tickers: dict[str, dict[str, Any]] = {}
        self.bars: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.positions = PositionBook()

    def apply_tick(self, tick: contract.Tick) -> None:
        symbol = tick.symbol.upper()
        current = self.tickers.get(symbol)
        if current is not None and tick.ts < current["ts"]:
            return  # a replayed older tick never overwrites a newer one
        entry: dict[str, Any] = {k: getattr(tick, k) for k in TICK_FIELDS}
        entry["mid"] = (tick.bid + tick.ask) / 2.0 if tick.bid > 0 and tick.ask > 0 else tick.last
        self.tickers[symbol] = entry

    def apply_bar(self, bar: contract.Bar) -> None:
        symbol = bar.symbol.upper()
        current = self.bars[symbol].get(bar.interval)
        if current is None or bar.start >= current["start"]:
            self.bars[symbol][bar.interval] = msgspec.structs.asdict(bar)

    def known_symbols(self) -> set[str]:
        return set(self.tickers) | set(self.bars)

    def snapshot(self, account: str, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = sorted(self.known_symbols() if symbols is None else symbols)
        positions: dict[str, dict[str, Any]] = {}
        realized = unrealized = 0.0
        for symbol, pos in self.positions.of(account).items():
            mark = (self.tickers.get(symbol.upper()) or {}).get("mid")
            open_pnl = pos.unrealized(float(mark)) if mark is not None else None
            positions[symbol] = {**pos.to_json(), "mark": mark, "unrealized": open_pnl}
            realized += pos.realized
            unrealized += open_pnl or 0.0
        return {
            "account": account,
            "tickers": {s: self.tickers[s] for s in wanted if s in self.tickers},
            "bars": {s: self.bars[s] for s in wanted if s in self.bars},
            "positions": positions,
            "pnl": {"realized": realized, "unrealized": unrealized, "total": realized + unrealized},
        }
