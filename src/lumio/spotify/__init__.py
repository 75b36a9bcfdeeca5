"""Spotify: linking an account (OAuth), the now-playing poller gated by live status and manual
connect (DESIGN §6), now playing as data, and the history of what was played."""
