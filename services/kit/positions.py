"""Position maths, one place for risk, ptrc and pnl: average cost, realized P&L.

A buy adds to a long (or covers a short), a sell the reverse. Closing quantity realizes
(exit - average) * closed for a long, (average - exit) * closed for a short; opening
quantity moves the average price. A fill that crosses zero closes the old side and
opens the new one at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Position", "signed"]


def signed(side: str, quantity: float) -> float:
    return quantity if side == "buy" else -quantity


@dataclass
class Position:
    quantity: float = 0.0  # > 0 long, < 0 short
    avg_price: float = 0.0
    realized: float = 0.0

    def apply(self, side: str, quantity: float, price: float) -> float:
        """Apply one fill; returns the P&L it realized."""
        delta = signed(side, quantity)
        realized = 0.0
        if self.quantity == 0 or (self.quantity > 0) == (delta > 0):
            new_qty = self.quantity + delta
            self.avg_price = (self.avg_price * abs(self.quantity) + price * abs(delta)) / abs(new_qty)
            self.quantity = new_qty
        else:
            closed = min(abs(delta), abs(self.quantity))
            direction = 1.0 if self.quantity > 0 else -1.0
            realized = (price - self.avg_price) * closed * direction
            remainder = abs(delta) - closed
            self.quantity += delta
            if abs(self.quantity) < 1e-12:
                self.quantity, self.avg_price = 0.0, 0.0
            elif remainder > 0:  # crossed through zero: the rest opens at this price
                self.avg_price = price
        self.realized += realized
        return realized

    def unrealized(self, mark: float) -> float:
        return (mark - self.avg_price) * self.quantity

    def to_json(self) -> dict[str, float]:
        return {"quantity": self.quantity, "avg_price": self.avg_price, "realized": self.realized}
