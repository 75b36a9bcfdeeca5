"""Linking and unlinking channels (API and CLI); the platform resolves what the user typed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import httpx
from redis.asyncio import Redis

from lumio.channels import repository
from lumio.channels.schemas import LinkedChannel
from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.errors import BadRequest, NotFound, Unavailable
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.kit.settings import Settings
from lumio.platforms.base import ChannelNotFound, Platform, PlatformError
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.push import repository as push_repository


def parse_platform(value: str) -> Platform:
    try:
        return Platform(value.strip().lower())
    except ValueError as exc:
        known = ", ".join(p.value for p in Platform)
        raise BadRequest(f"unknown platform {value!r}; one of {known}") from exc


async def link_channel(
    db: asyncpg.Pool,
    http: httpx.AsyncClient,
    settings: Settings,
    account_id: UUID,
    platform: Platform,
    handle: str,
) -> LinkedChannel:
    """Resolve ``handle`` on the platform and link it to the account (replacing a former link)."""
    handle = handle.strip()
    if not 1 <= len(handle) <= 200:
        raise BadRequest("a channel needs 1 to 200 characters")
    if platform not in configured_platforms(settings):
        raise Unavailable(f"{platform.value} is not configured on this server (no credentials)")
    adapter = build_adapter(platform, settings, http)
    try:
        resolved = await adapter.resolve(handle)
    except ChannelNotFound as exc:
        raise NotFound(f"{platform.value} has no channel {handle!r}") from exc
    except PlatformError as exc:
        raise Unavailable(f"{platform.value} could not be asked about {handle!r}: {exc}") from exc
    finally:
        await adapter.aclose()
    await repository.link(db, account_id, platform, resolved.channel_id, resolved.display_name)
    return next(c for c in await linked_channels(db, account_id) if c.platform is platform)


async def unlink_channel(
    db: asyncpg.Pool, redis: Redis, account_id: UUID, platform: Platform
) -> None:
    """Remove the link and the channel's status; a live channel is announced offline."""
    async with db.acquire() as conn, conn.transaction():
        removed, was_online = await repository.unlink(conn, account_id, platform)
    if not removed:
        raise NotFound(f"no {platform.value} channel is linked")
    if was_online:
        event = StatusEvent(
            account_id, Reason.WENT_OFFLINE, datetime.now(UTC), platform.value, False
        )
        await publish(redis, [event])


async def link_for(
    db: asyncpg.Pool,
    http: httpx.AsyncClient,
    settings: Settings,
    principal: Principal,
    platform: str,
    handle: str,
) -> LinkedChannel:
    account_id = principal.require(Permission.CHANNELS_MANAGE)
    return await link_channel(db, http, settings, account_id, parse_platform(platform), handle)


async def unlink_for(db: asyncpg.Pool, redis: Redis, principal: Principal, platform: str) -> None:
    account_id = principal.require(Permission.CHANNELS_MANAGE)
    await unlink_channel(db, redis, account_id, parse_platform(platform))


async def list_for(db: asyncpg.Pool, principal: Principal) -> list[LinkedChannel]:
    account_id = principal.require(Permission.SPOTIFY_READ)
    return await linked_channels(db, account_id)


async def linked_channels(db: asyncpg.Pool, account_id: UUID) -> list[LinkedChannel]:
    """The account's links, each with its push status (issue 11)."""
    linked = await repository.list_linked(db, account_id)
    push = await push_repository.channel_push(db, [(c.platform, c.channel_id) for c in linked])
    return [
        replace(c, push_status=p.status.value, push_last_message_at=p.last_message_at)
        if (p := push.get((c.platform, c.channel_id)))
        else c
        for c in linked
    ]
