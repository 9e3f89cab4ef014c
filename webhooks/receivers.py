"""Domain events (revops.events) → one queued delivery per subscribed endpoint."""
