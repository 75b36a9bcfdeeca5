"""Start, stop and read the manual connect of the principal's active account."""

from __future__ import annotations

from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.errors import Unavailable
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.manual_connect.schemas import SpotifyManualStatus

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


async def start(
    redis: Redis, principal: Principal, ttl_seconds: int = DEFAULT_TTL_SECONDS
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
    await publish(redis, [StatusEvent.manual(account_id, Reason.MANUAL_STARTED)])
    return SpotifyManualStatus.from_ttl(int(ttl))


async def stop(redis: Redis, principal: Principal) -> bool:
    """Close the gate. Idempotent: stopping an inactive connect succeeds too."""
    account_id = principal.require(Permission.SPOTIFY_WORKER)
    try:
        await redis.delete(manual_key(account_id))
    except (RedisError, OSError) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    await publish(redis, [StatusEvent.manual(account_id, Reason.MANUAL_STOPPED)])
    return True
