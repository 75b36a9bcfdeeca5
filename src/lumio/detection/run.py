"""Running `lumio worker`: adapters for the configured platforms, pollers, signals, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import httpx
from prometheus_client import start_http_server

from lumio.db.pool import create_pool
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.history.retention import HistoryRetention
from lumio.kit.clock import worker_id
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.platforms.registry import build_adapter, configured_platforms

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    assert settings.db.url
    assert settings.redis.url
    platforms = configured_platforms(settings)
    if not platforms:
        log.warning(
            "no platform has credentials set (LUMIO_TWITCH_CLIENT_ID, ...): nothing to poll"
        )
    metrics = WorkerMetrics()
    if settings.detection.metrics_port:
        start_http_server(settings.detection.metrics_port, registry=metrics.registry)
    db = await create_pool(
        settings.db.url, min_size=1, max_size=settings.detection.concurrency * 4 + 2
    )
    redis = create_redis(settings.redis.url, settings.redis.timeout)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(limits=limits) as http:
        pollers = [
            PlatformPoller(
                build_adapter(p, settings, http),
                db,
                redis,
                PollerConfig.from_settings(settings, p),
                metrics,
            )
            for p in platforms
        ]
        worker = Worker(pollers, settings.detection.concurrency)
        # Its first run is boot recovery: sessions a crash left open are closed.
        retention = HistoryRetention.from_settings(db, settings)

        def stop() -> None:
            # Finish (or give back) the batches in hand, then exit.
            worker.stop()
            retention.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        log.info(
            "worker %s polling %s", worker_id(), ", ".join(p.value for p in platforms) or "nothing"
        )
        try:
            await asyncio.gather(worker.run(), retention.start())
        finally:
            for poller in pollers:
                with contextlib.suppress(Exception):
                    await poller.adapter.aclose()
            await redis.aclose()
            await db.close()
    log.info("worker %s stopped", worker_id())
