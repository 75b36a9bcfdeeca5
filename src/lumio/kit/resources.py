"""Process-wide resources, created in one lifespan and injected into requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import asyncpg
import httpx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from lumio.db.pool import create_pool
from lumio.kit.auth_cache import INVALIDATE_CHANNEL, AuthCache
from lumio.kit.principal import Credential, Principal
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


def create_redis(url: str, timeout: float = 1.0) -> Redis:
    # Fail fast when Redis is down: callers answer 503 instead of hanging; the connection pool
    # reconnects by itself when Redis is back.
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        health_check_interval=15,
    )


async def listen_for_invalidations(redis: Redis, cache: AuthCache, stop: asyncio.Event) -> None:
    """Keep this process's auth cache in step with revocations made by any process.

    Polls with a timeout and a stop flag instead of being cancelled: redis-py's pub/sub
    reader can swallow a cancellation and hang the shutdown.
    """
    while not stop.is_set():
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(INVALIDATE_CHANNEL)
            # Anything revoked while we were not listening must not stay cached.
            cache.clear()
            while not stop.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if message is not None:
                    cache.invalidate(bytes.fromhex(message["data"].decode()))
        except (RedisError, OSError, ValueError) as exc:
            log.info("auth invalidation listener reconnecting: %s", exc)
            cache.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, authenticator: Authenticator
) -> AsyncIterator[Resources]:
    assert settings.database_url, "the database URL is resolved before start"
    assert settings.redis_url, "the Redis URL is resolved before start"
    db = await create_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    redis = create_redis(settings.redis_url, settings.redis_timeout_seconds)
    cache = AuthCache(settings.auth_cache_seconds)
    stop = asyncio.Event()
    listener = asyncio.create_task(listen_for_invalidations(redis, cache, stop))
    try:
        async with httpx.AsyncClient(timeout=settings.platform_timeout_seconds) as http:
            hashing = ThreadPoolExecutor(settings.password_workers, "lumio-hashing")
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
