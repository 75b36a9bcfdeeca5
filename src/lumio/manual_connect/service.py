"""Start, stop and read the manual connect of the principal's active account."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.errors import Unavailable
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.manual_connect.schemas import SpotifyManualStatus
from lumio.webhooks.outbox import enqueue_outside

KEY_PREFIX = "lumio:spotify_manual:"
DEFAULT_TTL_SECONDS = 1800

_UNAVAILABLE = (
    "Spotify manual connect is unavailable because Redis cannot be reached; "
    "channel status still works. Try again shortly."
)


def manual_key(account_id: UUID) -> str:
    return f"{KEY_PREFIX}{account_id}"


async def status(redis: Redis, principal: Principal) -> SpotifyManualStatus:
    account_id = principal.require(Permission.SPOTIFY_READ)
    try:
        ttl = await redis.ttl(manual_key(account_id))
    except (RedisError, OSError) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    return SpotifyManualStatus.from_ttl(int(ttl))


async def _announce(redis: Redis, db: asyncpg.Pool | None, event: StatusEvent) -> None:
    """Webhooks first (their own small transaction right after the key changed: a Redis key
    cannot join a PostgreSQL one), then the pub/sub hint. Without ``db`` only the hint."""
    if db is not None:
        await enqueue_outside(db, [event])
    await publish(redis, [event])


async def start(
    redis: Redis,
    principal: Principal,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    db: asyncpg.Pool | None = None,
) -> SpotifyManualStatus:
    """Open the gate for ``ttl_seconds``; a second start renews the full period."""
    account_id = principal.require(Permission.SPOTIFY_WORKER)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(manual_key(account_id), str(principal.user_id), ex=ttl_seconds)
            pipe.ttl(manual_key(account_id))
            _, ttl = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    await _announce(redis, db, StatusEvent.manual(account_id, Reason.MANUAL_STARTED))
    return SpotifyManualStatus.from_ttl(int(ttl))


async def stop(redis: Redis, principal: Principal, db: asyncpg.Pool | None = None) -> bool:
    """Close the gate. Idempotent: stopping an inactive connect succeeds too."""
    account_id = principal.require(Permission.SPOTIFY_WORKER)
    try:
        await redis.delete(manual_key(account_id))
    except (RedisError, OSError) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    await _announce(redis, db, StatusEvent.manual(account_id, Reason.MANUAL_STOPPED))
    return True
