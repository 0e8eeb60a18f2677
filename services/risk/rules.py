"""The pre-trade check: one pure function, shared by POST /check and NATS `risk.check`.

Rules, in order; the first that fails rejects the order (level CRITICAL):
    kill switch (global, then the symbol's), unknown symbol, quantity <= 0,
    min quantity and lot size (per symbol, so every order can fill),
    max order quantity, no price to value the order, max order notional,
    max working orders per account and symbol (orders that may still trade, this one included),
    max position per account and symbol, as it would be if every working order on the same
    side filled too: position + working buys + this buy, or position - working sells - this
    sell (services/risk/exposure.py); an order that brings that nearer to zero always passes;
    max exposure notional per account and symbol, the same sum valued: the position at the
    mark (the quote's mid), each working order and this one at its price.
Every limit used to at least `warn_ratio` (80%) adds a warning. The level is LOW,
MEDIUM (a warning), HIGH (95% of a limit) or CRITICAL (rejected).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.contract import RiskCheckReply, RiskCheckRequest, RiskLevel
from services.risk.exposure import WorkingTotals
from services.risk.limits import Limits

__all__ = ["KillSwitch", "check", "on_lot"]

HIGH_RATIO = 0.95


@dataclass
class KillSwitch:
    """Global and per-symbol halts; the value is the reason given when it was set."""

    global_reason: str | None = None
    symbols: dict[str, str] = field(default_factory=dict)

    def blocks(self, symbol: str) -> str | None:
        if self.global_reason is not None:
            return f"kill switch is active (global): {self.global_reason}"
        if symbol in self.symbols:
            return f"kill switch is active for {symbol}: {self.symbols[symbol]}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"global": self.global_reason is not None, "global_reason": self.global_reason,
                "symbols": dict(self.symbols)}


def on_lot(quantity: float, lot_size: float) -> bool:
    """Whether `quantity` is a whole number of lots, judged on the decimals as written (the
    shortest text of each float): the same answer at any size (a float tolerance relative
    to the number of lots accepted 999.99995 SOLUSDT and rejected 4.99995)."""
    return Decimal(repr(quantity)) % Decimal(repr(lot_size)) == 0


def _reject(reason: str) -> RiskCheckReply:
    return RiskCheckReply(approved=False, risk_level="CRITICAL", reason=reason)


def check(req: RiskCheckRequest, limits: Limits, *, position: float, price: float | None,
          known: bool, kill: KillSwitch, working: WorkingTotals | None = None,
          mark: float | None = None) -> RiskCheckReply:
    """Decide one order. `position` is the account's net quantity in the symbol now (its
    fills included); `working` the orders that may still trade there; `price` the order's
    price or, for a MARKET order, the quote it would trade at; `mark` what the position is
    valued at (the quote's mid; `price` when there is no quote)."""
    working = working or WorkingTotals()
    symbol = req.symbol
    halted = kill.blocks(symbol)
    if halted:
        return _reject(halted)
    if not known:
        return _reject(f"unknown symbol {symbol!r}: not in the risk universe")
    if not req.quantity > 0:
        return _reject(f"quantity must be > 0, got {req.quantity:g}")
    lim = limits.for_symbol(symbol)
    if req.quantity < lim.min_quantity:
        return _reject(f"quantity {req.quantity:g} is below the minimum {lim.min_quantity:g} for {symbol}")
    if not on_lot(req.quantity, lim.lot_size):
        return _reject(f"quantity {req.quantity:g} is not a multiple of the lot size "
                       f"{lim.lot_size:g} for {symbol}")
    if req.quantity > lim.max_order_quantity:
        return _reject(f"order quantity {req.quantity:g} exceeds max order quantity "
                       f"{lim.max_order_quantity:g} for {symbol}")
    if price is None or not math.isfinite(price) or price <= 0:
        return _reject(f"no price to value the order: give a price or wait for a {symbol} quote")
    notional = req.quantity * price
    if notional > lim.max_order_notional:
        return _reject(f"order notional {notional:,.2f} exceeds max order notional "
                       f"{lim.max_order_notional:,.2f} for {symbol}")
    if working.orders + 1 > lim.max_working_orders:
        return _reject(f"{working.orders} orders already working for {req.account}/{symbol}: "
                       f"max working orders is {lim.max_working_orders:g}")
    # The position if every working order on this side filled, before and after this one.
    before = position + working.buys if req.side == "buy" else position - working.sells
    after = before + (req.quantity if req.side == "buy" else -req.quantity)
    if abs(after) > lim.max_position and abs(after) > abs(before):
        return _reject(f"position {after:g} if this order and the working ones filled would exceed "
                       f"max position {lim.max_position:g} for {req.account}/{symbol} (position "
                       f"{position:g}, working buys {working.buys:g}, sells {working.sells:g})")
    # The same, valued: what the account would hold in the symbol.
    mark = price if mark is None else mark
    value_before = position * mark + (working.buy_notional if req.side == "buy"
                                      else -working.sell_notional)
    value_after = value_before + (notional if req.side == "buy" else -notional)
    growing = abs(value_after) > abs(value_before)
    if abs(value_after) > lim.max_exposure_notional and growing:
        return _reject(f"exposure {value_after:,.2f} if this order and the working ones filled "
                       f"would exceed max exposure notional {lim.max_exposure_notional:,.2f} for "
                       f"{req.account}/{symbol} (position {position:g} at {mark:,.2f}, working "
                       f"buys {working.buy_notional:,.2f}, sells {working.sell_notional:,.2f})")

    usage = {"order quantity": (req.quantity, lim.max_order_quantity),
             "order notional": (notional, lim.max_order_notional)}
    if abs(after) > abs(before):
        usage["position"] = (abs(after), lim.max_position)
    if growing:
        usage["exposure notional"] = (abs(value_after), lim.max_exposure_notional)
    warnings = [f"{name} at {used / cap:.0%} of limit ({used:g} of {cap:g})"
                for name, (used, cap) in usage.items() if used >= limits.warn_ratio * cap]
    top = max(used / cap for used, cap in usage.values())
    level: RiskLevel = "HIGH" if top >= HIGH_RATIO else "MEDIUM" if warnings else "LOW"
    return RiskCheckReply(approved=True, risk_level=level, warnings=warnings)
