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
from lumio.detection.wakeups import follow_wakes
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker, worker_id
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.kick import KickAdapter
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.platforms.twitch import TwitchAdapter
from lumio.push.reconcile import PushReconciler, build_clients
from lumio.push.service import push_platforms
from lumio.push.twitch import HeaderSource

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    assert settings.database_url
    assert settings.redis_url
    platforms = configured_platforms(settings)
    if not platforms:
        log.warning(
            "no platform has credentials set (LUMIO_TWITCH_CLIENT_ID, ...): nothing to poll"
        )
    metrics = WorkerMetrics()
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, registry=metrics.registry)
    db = await create_pool(
        settings.database_url, min_size=1, max_size=settings.worker_concurrency * 4 + 2
    )
    redis = create_redis(settings.redis_url, settings.redis_timeout_seconds)
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
        worker = Worker(pollers, settings.worker_concurrency)
        clients = build_clients(settings, http, app_headers(pollers))
        reconciler = PushReconciler(db, redis, settings, clients, metrics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Finish (or give back) the batches in hand, then exit.
            loop.add_signal_handler(sig, _stop_all, worker, reconciler)
        log.info(
            "worker %s polling %s", worker_id(), ", ".join(p.value for p in platforms) or "nothing"
        )
        if push_platforms(settings):
            log.info("push on for %s", ", ".join(sorted(p.value for p in push_platforms(settings))))
        try:
            await asyncio.gather(worker.run(), follow_wakes(redis, worker), reconciler.start())
        finally:
            for poller in pollers:
                with contextlib.suppress(Exception):
                    await poller.adapter.aclose()
            await redis.aclose()
            await db.close()
    log.info("worker %s stopped", worker_id())


def app_headers(pollers: list[PlatformPoller]) -> dict[Platform, HeaderSource]:
    """The adapters that own an app token lend it to the subscription clients."""
    headers: dict[Platform, HeaderSource] = {}
    for poller in pollers:
        if isinstance(poller.adapter, TwitchAdapter | KickAdapter):
            headers[poller.platform] = poller.adapter.app_headers
    return headers


def _stop_all(worker: Worker, reconciler: PushReconciler) -> None:
    worker.stop()
    reconciler.stop()
