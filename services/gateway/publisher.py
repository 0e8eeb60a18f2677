"""The gateway's background loops: ticks into the TICKS stream, alt-data into ALT.

Ticks go through JetStream and each publish waits for its ack (30 ticks/s cost a few ms
a second), so sinks consume them durably. A publish that fails (NATS down) is counted
and logged once per outage; the walk goes on and publishing resumes on reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from nats.js import JetStreamContext

from services import contract
from services.gateway.market import Market
from services.kit import bus
from services.kit.metrics import Metrics

__all__ = ["HEADLINES", "alt_event", "alt_loop", "tick_loop"]

log = logging.getLogger(__name__)

HEADLINES = [
    ("{base} ETF inflows hit a weekly high", 0.6),
    ("Exchange reports record {base} open interest", 0.3),
    ("Regulator opens inquiry into {base} market makers", -0.6),
    ("Large {base} transfer to an exchange wallet spotted", -0.3),
    ("{base} network upgrade ships on schedule", 0.4),
    ("Analysts split on {base} after volatile session", 0.0),
]


def alt_event(market: Market) -> contract.AltEvent:
    symbol = market.rng.choice(list(market.quotes))
    template, bias = market.rng.choice(HEADLINES)
    sentiment = max(-1.0, min(1.0, bias + market.rng.gauss(0, 0.2)))
    return contract.AltEvent(id=uuid.uuid4().hex, symbol=symbol, category="news",
                             headline=template.format(base=symbol.removesuffix("USDT")),
                             sentiment=round(sentiment, 3), source="trade-ops-sim", ts=contract.now_ms())


async def _publish(js: JetStreamContext, subject: str, event: contract.Event,
                   errors: list[bool]) -> None:
    try:
        await bus.publish_event(js, subject, event)
        if errors[0]:
            log.info("publishing again after an outage")
        errors[0] = False
    except Exception as exc:
        if not errors[0]:
            log.warning("publish to %s failed: %s", subject, exc)
        errors[0] = True
        raise


async def tick_loop(market: Market, js: JetStreamContext, hz: float, metrics: Metrics) -> None:
    ticks = metrics.counter("gateway_ticks_total", "ticks published", ("symbol",))
    failed = metrics.counter("gateway_publish_errors_total", "publishes that failed")
    period = 1.0 / hz
    outage = [False]
    next_at = time.monotonic()
    while True:
        quotes = [market.step(symbol) for symbol in market.quotes]
        results = await asyncio.gather(
            *(_publish(js, contract.tick_subject(q.symbol), q.tick_event(), outage)
              for q in quotes), return_exceptions=True)
        for q, result in zip(quotes, results, strict=True):
            if isinstance(result, BaseException):
                failed.inc()
            else:
                ticks.labels(q.symbol).inc()
        next_at += period
        delay = next_at - time.monotonic()
        if delay < -period:  # fell behind (a NATS outage): skip, do not burst
            next_at = time.monotonic()
            delay = 0.0
        await asyncio.sleep(max(0.0, delay))


async def alt_loop(market: Market, js: JetStreamContext, interval: float, metrics: Metrics) -> None:
    published = metrics.counter("gateway_alt_events_total", "alt-data events published")
    outage = [False]
    while True:
        await asyncio.sleep(interval)
        event = alt_event(market)
        try:
            await _publish(js, contract.alt_subject(event.symbol), event, outage)
            published.inc()
        except Exception:
            continue
