"""Now playing in Redis: ``lumio:spotify_now_playing:{account_id}``, JSON, with a short TTL.

The worker writes it after each poll; it expires when polling stops or keeps failing, so a reader
sees null ("nothing known") rather than a stale track. Changes are announced as
``now_playing_changed`` on the account's status channel, after the key is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from redis.asyncio import Redis

from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.spotify.schemas import NowPlaying

KEY_PREFIX = "lumio:spotify_now_playing:"


def now_playing_key(account_id: UUID) -> str:
    return f"{KEY_PREFIX}{account_id}"


def changed_event(account_id: UUID, at: datetime | None = None) -> StatusEvent:
    return StatusEvent(account_id, Reason.NOW_PLAYING_CHANGED, at or datetime.now(UTC))


async def load(redis: Redis, account_id: UUID) -> NowPlaying | None:
    raw = await redis.get(now_playing_key(account_id))
    return None if raw is None else NowPlaying.from_json(raw)


async def store(redis: Redis, entries: Sequence[tuple[UUID, NowPlaying, int]]) -> set[UUID]:
    """Write (account, now playing, TTL seconds) entries in one round trip; returns the accounts
    that had no key (readers saw null: for them this is news even if the track is the same)."""
    if not entries:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for account_id, now, ttl in entries:
            pipe.set(now_playing_key(account_id), now.to_json(), ex=ttl, get=True)
        before = await pipe.execute()
    return {a for (a, _, _), old in zip(entries, before, strict=True) if old is None}


async def clear(redis: Redis, account_ids: Sequence[UUID]) -> list[UUID]:
    """Delete the keys; returns the accounts that had one (their readers should hear of it)."""
    if not account_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for account_id in account_ids:
            pipe.delete(now_playing_key(account_id))
        deleted = await pipe.execute()
    return [a for a, n in zip(account_ids, deleted, strict=True) if n]


async def clear_and_announce(redis: Redis, account_ids: Sequence[UUID]) -> None:
    cleared = await clear(redis, account_ids)
    await publish(redis, [changed_event(a) for a in cleared])
