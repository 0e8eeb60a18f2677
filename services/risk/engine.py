"""The risk engine: limits, book and kill switch behind one `decide` used by both transports."""

from __future__ import annotations

import msgspec

from services import contract
from services.contract import RiskCheckReply, RiskCheckRequest
from services.kit.invalid import struct_reasons
from services.risk.book import Book
from services.risk.exposure import Exposure
from services.risk.limits import Limits
from services.risk.rules import KillSwitch, check

__all__ = ["RiskEngine"]


class RiskEngine:
    def __init__(self, limits: Limits, max_quote_age_s: float = 10.0) -> None:
        self.limits = limits
        self.max_quote_age_s = max_quote_age_s
        self.book = Book()
        self.kill = KillSwitch()
        self.exposure = Exposure()
        # Each position snapshot tells which fills it includes: they stop counting as pending.
        self.book.positions.on_apply = lambda snap: self.exposure.position(snap.account, snap.symbol,
                                                                           snap.seq)

    def known(self, symbol: str) -> bool:
        return symbol in self.limits.symbols or self.book.knows(symbol)

    def decide(self, req: RiskCheckRequest) -> RiskCheckReply:
        """Decide, and reserve an approved order's quantity in the same step (no await in
        between: a concurrent check sees it)."""
        stale = self._stale_quote(req)
        if stale is not None:
            return RiskCheckReply(approved=False, risk_level="CRITICAL", reason=stale)
        working = self.exposure.of(req.account, req.symbol)
        quote = self.book.quotes.get(req.symbol)
        mid = quote.mid if quote is not None else None
        price = self.book.price_for(req.symbol, req.side, req.price)
        result = check(req, self.limits, position=self.book.position(req.account, req.symbol)
                       + working.pending_fills, working=working, price=price, mark=mid,
                       known=self.known(req.symbol), kill=self.kill)
        if result.approved and req.order_id is not None and price is not None:
            self.exposure.reserve(req.order_id, req.account, req.symbol, req.side, req.quantity,
                                  price)
        # The mid now is the order's arrival price: the OMS keeps it on the order, and the
        # venue copies it onto each fill, so TCA measures a fill without a second feed.
        result.mid = mid
        return result

    def _stale_quote(self, req: RiskCheckRequest) -> str | None:
        """Why a MARKET order cannot be valued now: its quote stopped (ticks not flowing: a
        120 s old quote priced orders after a full disk)."""
        quote = self.book.quotes.get(req.symbol) if req.price is None else None
        if quote is None or quote.age_s() <= self.max_quote_age_s:
            return None
        return (f"no fresh quote for {req.symbol}: the last arrived {quote.age_s():.0f}s ago "
                f"(max_quote_age_s {self.max_quote_age_s:g}); a MARKET order is not valued on it")

    def decide_raw(self, body: bytes) -> tuple[list[str], RiskCheckReply]:
        """Decode and decide a JSON request: (what was invalid, the answer). An invalid
        request is answered with its reasons (a 422 over HTTP; a rejection over NATS)."""
        try:
            req = contract.decode(body or b"{}", RiskCheckRequest)
        except msgspec.ValidationError as exc:  # (a DecodeError too: first)
            found = struct_reasons(exc)
        except msgspec.DecodeError as exc:
            found = [f"body is not JSON: {exc}"]
        else:
            req.symbol = req.symbol.upper()  # any case is the same symbol
            return [], self.decide(req)
        return found, RiskCheckReply(approved=False, risk_level="CRITICAL",
                                     reason="invalid request: " + "; ".join(found))
