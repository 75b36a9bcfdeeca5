"""Prometheus metrics of `lumio spotify-worker`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from lumio.kit.loops import LoopRuns


class SpotifyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.polls = Counter(
            "lumio_spotify_polls_total",
            "Connections polled, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Counter(
            "lumio_spotify_requests_total",
            "HTTP requests sent to Spotify (Web API and accounts)",
            registry=self.registry,
        )
        self.refreshes = Counter(
            "lumio_spotify_token_refreshes_total",
            "Access-token refreshes, by result",
            ["result"],
            registry=self.registry,
        )
        self.gates = Counter(
            "lumio_spotify_gate_changes_total",
            "Gates opened or closed",
            ["change"],
            registry=self.registry,
        )
        self.open_gates = Gauge(
            "lumio_spotify_open_gates",
            "Connections with an open gate at the last reconcile",
            registry=self.registry,
        )
        self.blocked = Gauge(
            "lumio_spotify_blocked_seconds",
            "Seconds left of the app-wide block (429 Retry-After, quota)",
            registry=self.registry,
        )
        self.lag = Gauge(
            "lumio_spotify_poll_lag_seconds",
            "How late the last claimed batch was behind its schedule",
            registry=self.registry,
        )
        self.events = Counter(
            "lumio_spotify_events_total",
            "now_playing_changed events published",
            registry=self.registry,
        )
        # The loops' ``on_run`` hook.
        self.loop_run = LoopRuns(self.registry)
