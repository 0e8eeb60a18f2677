"""gateway settings (TRADE_OPS_* environment variables)."""

from __future__ import annotations

from services.kit import KitSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(KitSettings):
    service: str = "gateway"
    # Comma-separated symbol universe: TRADE_OPS_SYMBOLS=BTCUSDT,ETHUSDT,SOLUSDT
    symbols: str = "BTCUSDT,ETHUSDT,SOLUSDT"
    tick_hz: float = 10.0  # ticks per second, per symbol
    alt_interval_s: float = 5.0  # one alt-data event every this many seconds
    volatility: float = 0.0005  # standard deviation of the log return per tick
    seed: int | None = None

    @property
    def universe(self) -> list[str]:
        return [s.strip().upper() for s in self.symbols.split(",") if s.strip()]
