"""The risk engine: limits, book and kill switch behind one `decide` used by both transports."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from services.kit.invalid import reasons
from services.risk.book import Book
from services.risk.limits import Limits
from services.risk.rules import CheckRequest, CheckResult, KillSwitch, check

__all__ = ["RiskEngine"]


class RiskEngine:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.book = Book()
        self.kill = KillSwitch()

    def known(self, symbol: str) -> bool:
        return symbol in self.limits.symbols or self.book.knows(symbol)

    def decide(self, req: CheckRequest) -> CheckResult:
        result = check(req, self.limits, position=self.book.position(req.account, req.symbol),
                       price=self.book.price_for(req.symbol, req.side, req.price),
                       known=self.known(req.symbol), kill=self.kill)
        # The mid now is the order's arrival price: the OMS keeps it on the order, and the
        # venue copies it onto each fill, so TCA measures a fill without a second feed.
        quote = self.book.quotes.get(req.symbol)
        result.mid = quote.mid if quote is not None else None
        return result

    def decide_raw(self, body: bytes) -> tuple[bool, dict[str, Any]]:
        """Parse and decide a JSON request: (valid, answer). An invalid request is answered
        with its reasons (a 422 over HTTP; a rejection over NATS)."""
        try:
            req = CheckRequest.model_validate_json(body or b"{}")
        except ValidationError as exc:
            found = reasons(exc.errors())
            return False, {"approved": False, "risk_level": "CRITICAL", "warnings": [],
                           "reason": "invalid request: " + "; ".join(found), "errors": found}
        return True, self.decide(req).to_json()
