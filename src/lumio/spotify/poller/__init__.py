"""The now-playing poller: the worker, its HTTP client, intervals, budget and playback tracking."""
