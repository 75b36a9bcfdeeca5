"""Linking and unlinking channels (API and CLI); the platform resolves what the user typed."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import httpx
from redis.asyncio import Redis

from lumio.channel_status import repository as channel_status
from lumio.channel_status import repository as status_repository
from lumio.channel_status.schemas import OfflineWrite
from lumio.channels import repository
from lumio.channels.schemas import ChannelPreview, LinkedChannel
from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.history import repository as history
from lumio.kit.clock import utc_now
from lumio.kit.errors import BadRequest, NotFound, Unavailable
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.kit.settings import Settings
from lumio.platforms.base import ChannelNotFound, Platform, PlatformError, ResolvedChannel
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.push import repository as push_repository


def parse_platform(value: str) -> Platform:
    try:
        return Platform(value.strip().lower())
    except ValueError as exc:
        known = ", ".join(p.value for p in Platform)
        raise BadRequest(f"unknown platform {value!r}; one of {known}") from exc


async def resolve_channel(
    http: httpx.AsyncClient, settings: Settings, platform: Platform, handle: str
) -> ResolvedChannel:
    """Ask the platform what ``handle`` (login, handle, URL or id) names, without storing it."""
    handle = handle.strip()
    if not 1 <= len(handle) <= 200:
        raise BadRequest("a channel needs 1 to 200 characters")
    if platform not in configured_platforms(settings):
        raise Unavailable(f"{platform.value} is not configured on this server (no credentials)")
    adapter = build_adapter(platform, settings, http)
    try:
        return await adapter.resolve(handle)
    except ChannelNotFound as exc:
        raise NotFound(f"{platform.value} has no channel {handle!r}") from exc
    except PlatformError as exc:
        raise Unavailable(f"{platform.value} could not be asked about {handle!r}: {exc}") from exc
    finally:
        await adapter.aclose()


async def link_channel(
    db: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    settings: Settings,
    account_id: UUID,
    platform: Platform,
    handle: str,
) -> LinkedChannel:
    """Resolve ``handle`` on the platform and link it to the account (replacing a former link)."""
    resolved = await resolve_channel(http, settings, platform, handle)
    await _relink(db, redis, account_id, platform, resolved.channel_id, resolved.display_name)
    return next(c for c in await linked_channels(db, account_id) if c.platform == platform)


async def _relink(
    db: asyncpg.Pool,
    redis: Redis,
    account_id: UUID,
    platform: Platform,
    channel_id: str,
    display_name: str,
) -> None:
    """Store the link; another channel than before ends the old one's stream first.

    The old stream must not carry on under the new channel's name: its row goes offline in
    the same transaction and ``went_offline`` is announced after the commit, before the worker
    polls the new channel (DESIGN §5: one went_offline per stream).
    """
    now = datetime.now(UTC)
    async with db.acquire() as conn, conn.transaction():
        previous = await repository.link(conn, account_id, platform, channel_id, display_name)
        replaced = previous is not None and previous != channel_id
        ended = replaced and any(
            a.changed
            for a in await status_repository.set_offline_many(
                conn, [OfflineWrite(account_id, platform, now)]
            )
        )
        # Another channel resets the detector: the old channel's open session ends here.
        await history.close_orphans(conn, account_id)
    if ended:
        event = StatusEvent(account_id, Reason.WENT_OFFLINE, now, platform.value, False)
        await publish(redis, [event])


async def unlink_channel(
    db: asyncpg.Pool, redis: Redis, account_id: UUID, platform: Platform
) -> None:
    """Remove the link and the channel's status; a live channel is announced offline."""
    async with db.acquire() as conn, conn.transaction():
        removed, was_online = await repository.unlink(conn, account_id, platform)
        await history.close_orphans(conn, account_id)
    if not removed:
        raise NotFound(f"no {platform.value} channel is linked")
    if was_online:
        event = StatusEvent(
            account_id, Reason.WENT_OFFLINE, datetime.now(UTC), platform.value, False
        )
        await publish(redis, [event])


async def link_for(
    db: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    settings: Settings,
    principal: Principal,
    platform: str,
    handle: str,
) -> LinkedChannel:
    account_id = principal.require(Permission.CHANNELS_MANAGE)
    return await link_channel(
        db, redis, http, settings, account_id, parse_platform(platform), handle
    )


async def unlink_for(db: asyncpg.Pool, redis: Redis, principal: Principal, platform: str) -> None:
    account_id = principal.require(Permission.CHANNELS_MANAGE)
    await unlink_channel(db, redis, account_id, parse_platform(platform))


async def preview_for(
    http: httpx.AsyncClient, settings: Settings, principal: Principal, platform: str, handle: str
) -> ChannelPreview:
    principal.require(Permission.CHANNELS_MANAGE)
    parsed = parse_platform(platform)
    resolved = await resolve_channel(http, settings, parsed, handle)
    return ChannelPreview(
        platform=parsed.value,
        channel_id=resolved.channel_id,
        display_name=resolved.display_name,
        avatar_url=resolved.avatar_url,
    )


def error_kind(last_error: str | None) -> str | None:
    """The stable kind of a stored error ("timeout: read timed out" → "timeout")."""
    return None if last_error is None else last_error.partition(":")[0].strip() or None


def is_stale(channel: LinkedChannel, settings: Settings, now: datetime) -> bool:
    """The platform has answered only errors for longer than three poll intervals."""
    if channel.error_since is None:
        return False
    detection = settings.detection
    interval = detection.poll_live if channel.is_online else detection.poll_offline
    return now - channel.error_since > interval * 3


async def list_for(
    db: asyncpg.Pool, settings: Settings, principal: Principal
) -> list[LinkedChannel]:
    """The account's linked channels, each with its error kind and whether it is stale."""
    account_id = principal.require(Permission.SPOTIFY_READ)
    now = utc_now()
    online = {s.platform for s in await channel_status.get_status(db, account_id) if s.is_online}
    listed = [
        c.model_copy(update={"is_online": c.platform in online})
        for c in await linked_channels(db, account_id)
    ]
    return [
        c.model_copy(
            update={"error_kind": error_kind(c.last_error), "stale": is_stale(c, settings, now)}
        )
        for c in listed
    ]


async def linked_channels(db: asyncpg.Pool, account_id: UUID) -> list[LinkedChannel]:
    """The account's links, each with its push status (issue 11)."""
    linked = await repository.list_linked(db, account_id)
    push = await push_repository.channel_push(
        db, [(Platform(c.platform), c.channel_id) for c in linked]
    )
    return [
        c.model_copy(
            update={"push_status": p.status.value, "push_last_message_at": p.last_message_at}
        )
        if (p := push.get((Platform(c.platform), c.channel_id)))
        else c
        for c in linked
    ]
