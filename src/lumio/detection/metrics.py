"""Prometheus metrics of the platform worker."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lumio.kit.loops import LoopRuns


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.polls = Counter(
            "lumio_polls_total", "Channels polled", ["platform"], registry=self.registry
        )
        self.requests = Counter(
            "lumio_platform_requests_total",
            "HTTP requests sent to the platform",
            ["platform"],
            registry=self.registry,
        )
        self.observations = Counter(
            "lumio_observations_total",
            "Observations by kind",
            ["platform", "kind"],
            registry=self.registry,
        )
        self.errors = Counter(
            "lumio_poll_errors_total",
            "Unknown observations by error kind",
            ["platform", "kind"],
            registry=self.registry,
        )
        self.transitions = Counter(
            "lumio_transitions_total",
            "Status events published",
            ["platform", "reason"],
            registry=self.registry,
        )
        self.budget_remaining = Gauge(
            "lumio_budget_remaining",
            "Requests left in the platform's rate-limit window",
            ["platform"],
            registry=self.registry,
        )
        self.quota_used = Gauge(
            "lumio_quota_used",
            "Quota units spent today (YouTube)",
            ["platform"],
            registry=self.registry,
        )
        self.quota_remaining = Gauge(
            "lumio_quota_remaining",
            "Quota units left today (YouTube, resets at midnight Pacific)",
            ["platform"],
            registry=self.registry,
        )
        self.live_freshness = Gauge(
            "lumio_live_reconfirm_interval_seconds",
            "How long a live channel may go unconfirmed: the interval the quota pacer plans",
            ["platform"],
            registry=self.registry,
        )
        self.throttled = Counter(
            "lumio_budget_waits_total",
            "Batches given back unpolled because the budget said wait",
            ["platform"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "lumio_poll_lag_seconds",
            "How late the last claimed batch was behind its schedule",
            ["platform"],
            registry=self.registry,
        )
        self.rows_written = Counter(
            "lumio_status_rows_written_total",
            "channel_status rows written",
            ["platform"],
            registry=self.registry,
        )
        # The loops' ``on_run`` hook.
        self.loop_run = LoopRuns(self.registry)

        # Push ingestion (issue 11).
        self.hint_latency = Histogram(
            "lumio_push_hint_to_commit_seconds",
            "From a verified push message to the commit of the poll it caused",
            ["platform"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
            registry=self.registry,
        )
        self.push_subscriptions = Gauge(
            "lumio_push_subscriptions",
            "Push subscriptions by status",
            ["platform", "status"],
            registry=self.registry,
        )
        self.push_messages = Gauge(
            "lumio_push_messages",
            "Push messages received by every API process, by outcome (verified, rejected, "
            "duplicate, revoked), since the counters in Redis began",
            ["platform", "outcome"],
            registry=self.registry,
        )
