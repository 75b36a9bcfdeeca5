"""Running `lumio worker`: adapters for the configured platforms, pollers, signals, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import asyncpg
import httpx
from prometheus_client import start_http_server

from lumio.db.pool import create_pool
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.kit.clock import worker_id
from lumio.kit.crypto import MISSING_KEY, MissingTokenKey, cipher_for
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.webhooks.delivery import DeliveryLoop

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
        # The webhook delivery loop lives here: the outbox rows are written by this process's
        # transactions, and one process to run (and scale) is simpler than two.
        delivery = _delivery_loop(settings, db)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Finish (or give back) the batches in hand, then exit.
            loop.add_signal_handler(sig, _stopper(worker, delivery))
        log.info(
            "worker %s polling %s", worker_id(), ", ".join(p.value for p in platforms) or "nothing"
        )
        try:
            await asyncio.gather(worker.run(), *([delivery.start()] if delivery else []))
        finally:
            for poller in pollers:
                with contextlib.suppress(Exception):
                    await poller.adapter.aclose()
            if delivery is not None:
                await delivery.sender.http.aclose()
            await redis.aclose()
            await db.close()
    log.info("worker %s stopped", worker_id())


def _delivery_loop(settings: Settings, db: asyncpg.Pool) -> DeliveryLoop | None:
    try:
        cipher = cipher_for(settings)
    except MissingTokenKey:
        log.warning("webhooks are not delivered: %s", MISSING_KEY)
        return None
    # Its own client: no redirects, small pool per host, the 5 s bound per request.
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=settings.webhooks.concurrency))
    return DeliveryLoop(db, http, cipher, settings.webhooks)


def _stopper(worker: Worker, delivery: DeliveryLoop | None) -> Callable[[], None]:
    def stop() -> None:
        worker.stop()
        if delivery is not None:
            delivery.stop()

    return stop
