"""Helpers for the order-path tests (gateway, risk, oms): hand-built ticks and fills, startup.

Publishing and environments come from tests.bus_helpers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from services import contract as events
from tests.helpers import Proc, start_service

__all__ = ["fill_event", "start", "tick_event"]


def start(name: str, workdir: Path, env: dict[str, str]) -> tuple[Proc, httpx.Client]:
    proc = start_service(name, workdir, env)
    return proc, httpx.Client(base_url=proc.url, timeout=5)


def tick_event(symbol: str, bid: float, ask: float, size: float = 1.0) -> tuple[str, dict[str, Any]]:
    seq = time.time_ns()
    return events.tick_subject(symbol), {
        "id": f"{symbol}-{seq}", "symbol": symbol, "seq": seq, "bid": bid, "ask": ask,
        "last": ask, "bid_size": size, "ask_size": size, "volume": 0.1, "ts": events.now_ms()}


def fill_event(account: str, symbol: str, side: str, quantity: float, price: float, *,
               order_id: str | None = None, fill_id: str | None = None, cumulative: float | None = None,
               order_quantity: float | None = None) -> tuple[str, dict[str, Any]]:
    fill_id = fill_id or uuid.uuid4().hex
    cumulative = quantity if cumulative is None else cumulative
    leaves = max(0.0, (order_quantity or cumulative) - cumulative)
    return events.fill_subject(symbol), {
        "id": fill_id, "fill_id": fill_id, "order_id": order_id or uuid.uuid4().hex,
        "client_order_id": None, "account": account, "symbol": symbol, "side": side,
        "quantity": quantity, "price": price, "cumulative_quantity": cumulative,
        "leaves_quantity": leaves, "final": leaves == 0, "order_ts": events.now_ms(),
        "ts": events.now_ms()}
