"""Live-status detection: the per-channel state machine that turns observations into writes (DESIGN §3)."""
