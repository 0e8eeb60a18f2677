"""gateway: the market simulator (random-walk quotes, ticks, alt-data events, /tickers)."""
