"""Spotify manual connect: a Redis key with a TTL that opens the Spotify gate by hand (DESIGN §6)."""
