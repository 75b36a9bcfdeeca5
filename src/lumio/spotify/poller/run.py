"""Running `lumio spotify-worker`: checks, resources, signals, metrics."""

from __future__ import annotations

import asyncio
import logging
import signal

import asyncpg
import httpx
from redis.asyncio import Redis

from lumio.db.pool import DbTimeouts, create_pool
from lumio.kit.clock import worker_id
from lumio.kit.errors import Unavailable
from lumio.kit.health import LoopHealth, Readiness, start_probes
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.kit.startup import until_stopped, wait_for_database, wait_for_redis
from lumio.spotify.linking.crypto import cipher_for, with_local_key
from lumio.spotify.linking.oauth import SpotifyApp
from lumio.spotify.poller.client import SpotifyClient
from lumio.spotify.poller.metrics import SpotifyMetrics
from lumio.spotify.poller.worker import SpotifyWorker, SpotifyWorkerConfig

log = logging.getLogger(__name__)


def worker_settings(configured: Settings, resolved: Settings) -> Settings:
    """``resolved`` (servers running) with the token key this process will use.

    Refuses to start (Unavailable) without Spotify credentials, or without a token key against a
    configured database; on embedded servers a key is generated in the data folder.
    """
    embedded = not configured.db.url
    settings = with_local_key(resolved, embedded=embedded)
    if not SpotifyApp.from_settings(settings).configured:
        raise Unavailable(
            "the Spotify worker needs the app's credentials: set LUMIO_SPOTIFY_CLIENT_ID and "
            "LUMIO_SPOTIFY_CLIENT_SECRET"
        )
    cipher_for(settings)
    return settings


def in_flight(settings: Settings) -> int:
    """Requests the worker may have out at once: every loop's whole batch."""
    return settings.spotify.concurrency * settings.spotify.batch_size


def spotify_http(settings: Settings) -> httpx.AsyncClient:
    """The client for the accounts service (token refreshes: a few a second at most)."""
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=10)
    return httpx.AsyncClient(limits=limits, timeout=settings.spotify.timeout.total_seconds())


def build_worker(
    db: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    settings: Settings,
    metrics: SpotifyMetrics | None = None,
) -> SpotifyWorker:
    """The worker of this process (also run inside `lumio dev`)."""
    client = SpotifyClient(
        http,
        SpotifyApp.from_settings(settings),
        f"lumio-spotify-worker ({worker_id()})",
        max_connections=in_flight(settings),
        timeout=settings.spotify.timeout.total_seconds(),
    )
    config = SpotifyWorkerConfig.from_settings(settings)
    return SpotifyWorker(db, redis, client, cipher_for(settings), config, metrics)


async def run_spotify_worker(settings: Settings) -> None:
    assert settings.db.url
    assert settings.redis.url
    metrics = SpotifyMetrics()
    readiness = Readiness(settings.runtime.health_timeout.total_seconds())
    probes = await start_probes(
        metrics.registry, readiness, settings.spotify.metrics_port, "lumio spotify-worker"
    )
    stopping = asyncio.Event()
    workers: list[SpotifyWorker] = []

    def stop() -> None:
        # Stop waiting, or finish (or give back) the batches in hand, then exit.
        stopping.set()
        for worker in workers:
            worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop)
    try:
        await _serve(settings, metrics, readiness, stopping, workers)
    finally:
        if probes is not None:
            await probes.close()
    log.info("spotify worker %s stopped", worker_id())


async def _serve(
    settings: Settings,
    metrics: SpotifyMetrics,
    readiness: Readiness,
    stopping: asyncio.Event,
    workers: list[SpotifyWorker],
) -> None:
    assert settings.db.url and settings.redis.url
    timeouts, retry = DbTimeouts.of(settings), settings.runtime.startup_retry_max.total_seconds()
    if not await until_stopped(wait_for_database(settings.db.url, timeouts, retry), stopping):
        return
    config = SpotifyWorkerConfig.from_settings(settings)
    db = await create_pool(
        settings.db.url,
        min_size=1,
        max_size=config.concurrency * 2 + 4,
        timeouts=timeouts,
    )
    redis = create_redis(settings.redis.url, settings.redis.timeout)
    try:
        if await until_stopped(wait_for_redis(redis, settings.redis.url, retry), stopping):
            readiness.db, readiness.redis = db, redis
            await _poll(settings, metrics, readiness, stopping, workers)
    finally:
        await redis.aclose()
        await db.close()


async def _poll(
    settings: Settings,
    metrics: SpotifyMetrics,
    readiness: Readiness,
    stopping: asyncio.Event,
    workers: list[SpotifyWorker],
) -> None:
    assert readiness.db is not None and readiness.redis is not None
    async with spotify_http(settings) as http:
        worker = build_worker(readiness.db, readiness.redis, http, settings, metrics)
        workers.append(worker)
        if stopping.is_set():
            worker.stop()
        readiness.loops = [
            LoopHealth(
                "spotify-poll",
                settings.spotify.lease.total_seconds(),
                worker.poller.last_success_at,
            )
        ]
        log.info("spotify worker %s started", worker_id())
        try:
            await worker.run()
        finally:
            await worker.poller.client.aclose()
