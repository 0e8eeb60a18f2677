"""The 14 lean services of the trading backend, and the kit they share (services.kit)."""
