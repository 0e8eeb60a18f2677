"""risk: pre-trade checks over HTTP and NATS request/reply, limits, kill switch."""
