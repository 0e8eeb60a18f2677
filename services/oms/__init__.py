"""oms: order entry (risk check, persist, publish) and order state from fills and cancels."""
