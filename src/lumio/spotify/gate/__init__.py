"""The gate: whether an account's now playing is polled (any platform live, or manual connect)."""
