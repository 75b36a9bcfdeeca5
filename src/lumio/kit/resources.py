"""Process-wide resources, created in one lifespan and injected into requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from starlette.requests import HTTPConnection

from lumio.db.pool import DbTimeouts, create_pool
from lumio.kit.auth_cache import INVALIDATE_CHANNEL, AuthCache
from lumio.kit.principal import Credential, Principal
from lumio.kit.pubsub import Kind, Received, consume
from lumio.kit.settings import Settings

log = logging.getLogger(__name__)

# Turns a presented secret into its principal. The registry passes the auth domain's
# function in, so that the kit, which every domain imports, imports no domain itself.
Authenticator = Callable[[asyncpg.Pool, AuthCache, str, Credential], Awaitable[Principal]]


@dataclass(slots=True)
class Resources:
    settings: Settings
    db: asyncpg.Pool
    redis: Redis
    auth_cache: AuthCache
    # For the platforms' APIs (resolving a channel when it is linked).
    http: httpx.AsyncClient
    authenticator: Authenticator
    # CPU-heavy work (Argon2 password verification), bounded so that a flood of sign-ins
    # leaves cores for every other request (LUMIO_PASSWORD_WORKERS).
    hashing: ThreadPoolExecutor
    # Set when the server starts to stop: long-lived responses (live streams) end by themselves
    # instead of holding the shutdown open (see lumio.serve).
    shutting_down: asyncio.Event = field(default_factory=asyncio.Event)


def resources_of(conn: HTTPConnection) -> Resources:
    resources: Resources = conn.app.state.resources
    return resources


def create_redis(url: str, timeout: timedelta = timedelta(seconds=1)) -> Redis:
    # Fail fast when Redis is down: callers answer 503 instead of hanging; the connection pool
    # reconnects by itself when Redis is back.
    return Redis.from_url(
        url,
        socket_timeout=timeout.total_seconds(),
        socket_connect_timeout=timeout.total_seconds(),
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        health_check_interval=15,
    )


async def listen_for_invalidations(redis: Redis, cache: AuthCache, stop: asyncio.Event) -> None:
    """Keep this process's auth cache in step with revocations made by any process.

    One reader over ``kit.pubsub``, ended by ``stop`` (never cancelled: redis-py's pub/sub
    reader can swallow a cancellation and hang the shutdown).
    """
    await consume(redis, INVALIDATE_CHANNEL, partial(_invalidate, cache), stop.is_set)


def _invalidate(cache: AuthCache, item: Received) -> None:
    if item.kind is Kind.LOST:
        # Revocations cannot reach us now: cache nothing until we listen again.
        cache.pause()
        return
    if item.kind is not Kind.MESSAGE:
        # (Re)subscribed: anything revoked while we were not listening must not stay cached.
        cache.resume()
        return
    try:
        cache.invalidate(bytes.fromhex(item.data.decode()))
    except ValueError:
        log.warning("unreadable auth invalidation %r: clearing the whole cache", item.data[:80])
        cache.clear()


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, authenticator: Authenticator
) -> AsyncIterator[Resources]:
    assert settings.db.url, "the database URL is resolved before start"
    assert settings.redis.url, "the Redis URL is resolved before start"
    # No connection opened here: the API starts (and answers /healthz 503) while PostgreSQL
    # is away, and serves as soon as it returns.
    db = await create_pool(
        settings.db.url,
        min_size=0,
        max_size=settings.db.pool_max,
        timeouts=DbTimeouts.of(settings),
    )
    redis = create_redis(settings.redis.url, settings.redis.timeout)
    cache = AuthCache(settings.api.auth_cache.total_seconds())
    stop = asyncio.Event()
    listener = asyncio.create_task(listen_for_invalidations(redis, cache, stop))
    try:
        async with httpx.AsyncClient(timeout=settings.platform_timeout.total_seconds()) as http:
            hashing = ThreadPoolExecutor(settings.api.password_workers, "lumio-hashing")
            resources = Resources(settings, db, redis, cache, http, authenticator, hashing)
            try:
                yield resources
            finally:
                resources.shutting_down.set()
                hashing.shutdown(wait=False, cancel_futures=True)
    finally:
        stop.set()
        await listener
        await redis.aclose()
        await db.close()
