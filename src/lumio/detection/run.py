"""Running `lumio worker`: probes, waiting for the database, adapters, pollers, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

import asyncpg
import httpx

from lumio.db.pool import DbTimeouts, create_pool
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.wakeups import follow_wakes
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.history.retention import HistoryRetention
from lumio.kit.clock import worker_id
from lumio.kit.crypto import MISSING_KEY, MissingTokenKey, cipher_for
from lumio.kit.health import LoopHealth, Readiness, start_probes
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.kit.startup import until_stopped, wait_for_database, wait_for_redis
from lumio.platforms.base import Platform
from lumio.platforms.kick import KickAdapter
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.platforms.twitch import TwitchAdapter
from lumio.push.reconcile import PushReconciler, build_clients
from lumio.push.service import push_platforms
from lumio.push.twitch import HeaderSource
from lumio.webhooks.delivery import DeliveryLoop

log = logging.getLogger(__name__)

NO_PLATFORM = (
    "no platform has credentials set (LUMIO_TWITCH_CLIENT_ID, LUMIO_YOUTUBE_API_KEY, "
    "LUMIO_KICK_CLIENT_ID, LUMIO_TROVO_CLIENT_ID): nothing to poll"
)


class Stoppable(Protocol):
    def stop(self) -> None: ...


def on_signals(stop: asyncio.Event, also: list[Stoppable]) -> None:
    """SIGTERM/SIGINT: stop waiting, or finish (or give back) the batches in hand, then exit."""

    def handle() -> None:
        stop.set()
        for worker in also:
            worker.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handle)


async def run_worker(settings: Settings) -> None:
    assert settings.db.url
    assert settings.redis.url
    metrics = WorkerMetrics()
    readiness = Readiness(settings.runtime.health_timeout.total_seconds())
    probes = await start_probes(
        metrics.registry, readiness, settings.detection.metrics_port, "lumio worker"
    )
    stopping, workers = asyncio.Event(), list[Stoppable]()
    on_signals(stopping, workers)
    try:
        await _serve(settings, metrics, readiness, stopping, workers)
    finally:
        if probes is not None:
            await probes.close()
    log.info("worker %s stopped", worker_id())


async def _serve(
    settings: Settings,
    metrics: WorkerMetrics,
    readiness: Readiness,
    stopping: asyncio.Event,
    workers: list[Stoppable],
) -> None:
    assert settings.db.url and settings.redis.url
    timeouts = DbTimeouts.of(settings)
    retry = settings.runtime.startup_retry_max.total_seconds()
    if not await until_stopped(wait_for_database(settings.db.url, timeouts, retry), stopping):
        return
    redis = create_redis(settings.redis.url, settings.redis.timeout)
    db = await create_pool(
        settings.db.url,
        min_size=1,
        max_size=settings.detection.concurrency * 4 + 2,
        timeouts=timeouts,
    )
    try:
        if await until_stopped(wait_for_redis(redis, settings.redis.url, retry), stopping):
            readiness.db, readiness.redis = db, redis
            await _poll(settings, metrics, readiness, stopping, workers)
    finally:
        await redis.aclose()
        await db.close()


async def _poll(
    settings: Settings,
    metrics: WorkerMetrics,
    readiness: Readiness,
    stopping: asyncio.Event,
    workers: list[Stoppable],
) -> None:
    assert readiness.db is not None and readiness.redis is not None
    platforms = configured_platforms(settings)
    if not platforms:
        # Exiting would make a service manager restart it in a loop: stay up and say so.
        log.warning(NO_PLATFORM)
        readiness.idle_reason = NO_PLATFORM
        await stopping.wait()
        return
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    async with httpx.AsyncClient(limits=limits) as http:
        pollers = [
            PlatformPoller(
                build_adapter(p, settings, http),
                readiness.db,
                readiness.redis,
                PollerConfig.from_settings(settings, p),
                metrics,
            )
            for p in platforms
        ]
        readiness.loops = [
            LoopHealth(
                f"poll-{p.platform}", settings.detection.lease.total_seconds(), p.last_success_at
            )
            for p in pollers
        ]
        worker = Worker(pollers, settings.detection.concurrency)
        # Its first run is boot recovery: sessions a crash left open are closed.
        retention = HistoryRetention.from_settings(readiness.db, settings)
        clients = build_clients(settings, http, app_headers(pollers))
        reconciler = PushReconciler(readiness.db, readiness.redis, settings, clients, metrics)
        # The webhook delivery loop lives here: the outbox rows are written by this process's
        # transactions, and one process to run (and scale) is simpler than two.
        delivery = _delivery_loop(settings, readiness.db)
        loops: list[Stoppable] = [worker, retention, reconciler, *([delivery] if delivery else [])]
        workers.extend(loops)
        if stopping.is_set():
            for loop in loops:
                loop.stop()
        log.info("worker %s polling %s", worker_id(), ", ".join(p.value for p in platforms))
        if push_platforms(settings):
            log.info("push on for %s", ", ".join(sorted(p.value for p in push_platforms(settings))))
        try:
            await asyncio.gather(
                worker.run(),
                retention.start(),
                follow_wakes(readiness.redis, worker),
                reconciler.start(),
                *([delivery.start()] if delivery else []),
            )
        finally:
            for poller in pollers:
                with contextlib.suppress(Exception):
                    await poller.adapter.aclose()
            if delivery is not None:
                await delivery.sender.aclose()


def app_headers(pollers: list[PlatformPoller]) -> dict[Platform, HeaderSource]:
    """The adapters that own an app token lend it to the subscription clients."""
    headers: dict[Platform, HeaderSource] = {}
    for poller in pollers:
        if isinstance(poller.adapter, TwitchAdapter | KickAdapter):
            headers[poller.platform] = poller.adapter.app_headers
    return headers


def _delivery_loop(settings: Settings, db: asyncpg.Pool) -> DeliveryLoop | None:
    try:
        cipher = cipher_for(settings)
    except MissingTokenKey:
        log.warning("webhooks are not delivered: %s", MISSING_KEY)
        return None
    return DeliveryLoop(db, cipher, settings.webhooks)
