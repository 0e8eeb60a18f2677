"""What risk knows about the market and the accounts: the latest quotes, and positions as
ptrc publishes them (services.kit.position_book): risk applies no fill itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.kit.position_book import PositionBook
from services.kit.quotes import QuoteBook

__all__ = ["Book"]


@dataclass
class Book:
    positions: PositionBook = field(default_factory=PositionBook)
    quotes: QuoteBook = field(default_factory=QuoteBook)

    def position(self, account: str, symbol: str) -> float:
        return self.positions.quantity(account, symbol)

    def price_for(self, symbol: str, side: str, limit_price: float | None) -> float | None:
        """The order's own price, or the quote it would trade at (ask to buy, bid to sell)."""
        if limit_price is not None:
            return limit_price
        quote = self.quotes.get(symbol)
        if quote is None:
            return None
        return quote.ask if side == "buy" else quote.bid

    def knows(self, symbol: str) -> bool:
        return self.quotes.get(symbol) is not None

    def positions_json(self, account: str | None) -> list[dict[str, Any]]:
        accounts = sorted(self.positions.accounts) if account is None else [account]
        return [{"account": a, "symbol": s, **p.to_json()}
                for a in accounts for s, p in self.positions.of(a).items()]
