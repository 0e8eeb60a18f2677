"""The in-memory view behind `/snapshot`: latest tickers and bars, positions per account.

Fed by bus messages (`apply_*`), read by `snapshot`; no I/O, so a read never waits on
another service. Positions use the kit's average-cost maths; they are marked at the
latest mid (the last trade when a tick has no two-sided quote).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from services.kit.positions import Position

__all__ = ["View"]

TICK_FIELDS = ("bid", "ask", "last", "bid_size", "ask_size", "ts")


class View:
    def __init__(self) -> None:
        self.tickers: dict[str, dict[str, Any]] = {}
        self.bars: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.positions: dict[str, dict[str, Position]] = defaultdict(lambda: defaultdict(Position))
        self.fill_ids: set[str] = set()
        self.fills_applied = 0

    def apply_tick(self, tick: dict[str, Any]) -> None:
        symbol = str(tick["symbol"]).upper()
        current = self.tickers.get(symbol)
        if current is not None and float(tick["ts"]) < current["ts"]:
            return  # a replayed older tick never overwrites a newer one
        entry = {k: tick.get(k) for k in TICK_FIELDS}
        bid, ask = float(tick.get("bid") or 0), float(tick.get("ask") or 0)
        entry["mid"] = (bid + ask) / 2.0 if bid > 0 and ask > 0 else tick.get("last")
        self.tickers[symbol] = entry

    def apply_bar(self, bar: dict[str, Any]) -> None:
        symbol, interval = str(bar["symbol"]).upper(), str(bar["interval"])
        current = self.bars[symbol].get(interval)
        if current is None or float(bar["start"]) >= float(current["start"]):
            self.bars[symbol][interval] = bar

    def apply_fill(self, fill: dict[str, Any]) -> bool:
        """Apply a fill once per fill id; False for a duplicate."""
        fill_id = str(fill.get("fill_id") or fill["id"])
        if fill_id in self.fill_ids:
            return False
        self.positions[str(fill["account"])][str(fill["symbol"]).upper()].apply(
            str(fill["side"]), float(fill["quantity"]), float(fill["price"]))
        self.fill_ids.add(fill_id)
        self.fills_applied += 1
        return True

    def known_symbols(self) -> set[str]:
        return set(self.tickers) | set(self.bars)

    def snapshot(self, account: str, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        wanted = sorted(self.known_symbols() if symbols is None else symbols)
        positions: dict[str, dict[str, Any]] = {}
        realized = unrealized = 0.0
        for symbol, pos in sorted(self.positions.get(account, {}).items()):
            mark = (self.tickers.get(symbol) or {}).get("mid")
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
