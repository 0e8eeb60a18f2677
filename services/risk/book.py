"""What risk knows about the market and the accounts: latest quotes, positions from fills.

Fills are applied once per fill id, so replaying the stream after a restart, or a
redelivery, never counts a fill twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.kit.positions import Position

__all__ = ["Book"]


@dataclass
class Book:
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    quotes: dict[str, tuple[float, float]] = field(default_factory=dict)  # symbol -> (bid, ask)
    seen_fills: set[str] = field(default_factory=set)

    def position(self, account: str, symbol: str) -> float:
        pos = self.positions.get((account, symbol))
        return pos.quantity if pos is not None else 0.0

    def price_for(self, symbol: str, side: str, limit_price: float | None) -> float | None:
        """The order's own price, or the quote it would trade at (ask to buy, bid to sell)."""
        if limit_price is not None:
            return limit_price
        quote = self.quotes.get(symbol)
        if quote is None:
            return None
        return quote[1] if side == "buy" else quote[0]

    def on_tick(self, tick: dict[str, Any]) -> None:
        self.quotes[tick["symbol"]] = (float(tick["bid"]), float(tick["ask"]))

    def apply_fill(self, fill: dict[str, Any]) -> bool:
        """Apply a fill unless its id was seen; True when it changed a position."""
        fill_id = str(fill.get("fill_id") or fill["id"])
        if fill_id in self.seen_fills:
            return False
        key = (fill["account"], fill["symbol"])
        self.positions.setdefault(key, Position()).apply(
            fill["side"], float(fill["quantity"]), float(fill["price"]))
        self.seen_fills.add(fill_id)
        return True

    def positions_json(self, account: str | None) -> list[dict[str, Any]]:
        return [{"account": a, "symbol": s, **p.to_json()}
                for (a, s), p in sorted(self.positions.items())
                if account is None or a == account]
