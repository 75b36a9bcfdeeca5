"""Status events on Redis pub/sub (DESIGN §5)."""
