"""Limits from a TOML file: per-symbol tables over a DEFAULT that applies to the rest."""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_FILE", "Limits", "SymbolLimits", "load_limits"]

DEFAULT_FILE = Path(__file__).with_name("limits.toml")


@dataclass(frozen=True)
class SymbolLimits:
    max_order_quantity: float
    max_order_notional: float
    max_position: float
    # The smallest order, and the step quantities come in (a MARKET order for 1e-13 can
    # never fill: it would stay open forever).
    min_quantity: float = 0.0001
    lot_size: float = 0.0001
    # Orders that may still trade (accepted, not filled or cancelled) per account and symbol.
    max_working_orders: float = 10_000
    # The position at the mark plus the working orders on the order's side at their prices,
    # per account and symbol (no limit unless the file sets one).
    max_exposure_notional: float = math.inf


@dataclass(frozen=True)
class Limits:
    default: SymbolLimits
    overrides: dict[str, SymbolLimits] = field(default_factory=dict)
    symbols: frozenset[str] = frozenset()
    warn_ratio: float = 0.8

    def for_symbol(self, symbol: str) -> SymbolLimits:
        return self.overrides.get(symbol, self.default)

    def to_json(self) -> dict[str, Any]:
        return {"symbols": sorted(self.symbols), "warn_ratio": self.warn_ratio,
                "DEFAULT": _json(self.default),
                "per_symbol": {s: _json(v) for s, v in sorted(self.overrides.items())}}


def _json(limits: SymbolLimits) -> dict[str, float | None]:
    """A limit that is not set (infinite) is null: JSON has no infinity."""
    return {k: v if math.isfinite(v) else None for k, v in asdict(limits).items()}


def _positive(table: dict[str, Any], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in table.items():
        if key not in SymbolLimits.__dataclass_fields__:
            raise ValueError(f"{where}: unknown limit {key!r}")
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{where}.{key}: must be a number > 0, got {value!r}")
        out[key] = float(value)
    return out


def load_limits(path: Path | str = DEFAULT_FILE) -> Limits:
    doc = tomllib.loads(Path(path).read_text())
    default = SymbolLimits(**_positive(doc.get("DEFAULT", {}), "DEFAULT"))
    overrides = {
        name.upper(): replace(default, **_positive(table, name))
        for name, table in doc.items() if isinstance(table, dict) and name != "DEFAULT"
    }
    symbols = frozenset(s.upper() for s in doc.get("symbols", [])) | frozenset(overrides)
    warn_ratio = float(doc.get("warn_ratio", 0.8))
    if not 0 < warn_ratio <= 1:
        raise ValueError(f"warn_ratio must be in (0, 1], got {warn_ratio}")
    return Limits(default, overrides, symbols, warn_ratio)
