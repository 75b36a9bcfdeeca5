"""GraphQL: linkedChannels, linkChannel, unlinkChannel."""

from __future__ import annotations

from datetime import datetime

import strawberry

from lumio.channels import service
from lumio.channels.schemas import ChannelPreview, LinkedChannel
from lumio.kit.graphql import Info


@strawberry.type(name="LinkedChannel")
class LinkedChannelType:
    platform: str
    channel_id: str
    display_name: str
    last_polled_at: datetime | None
    last_error: str | None
    error_kind: str | None
    error_since: datetime | None
    stale: bool

    @classmethod
    def of(cls, channel: LinkedChannel, stale: bool = False) -> LinkedChannelType:
        return cls(
            platform=channel.platform.value,
            channel_id=channel.channel_id,
            display_name=channel.display_name,
            last_polled_at=channel.last_polled_at,
            last_error=channel.last_error,
            error_kind=service.error_kind(channel.last_error),
            error_since=channel.error_since,
            stale=stale,
        )


@strawberry.type(name="ChannelPreview")
class ChannelPreviewType:
    platform: str
    channel_id: str
    display_name: str
    avatar_url: str | None

    @classmethod
    def of(cls, preview: ChannelPreview) -> ChannelPreviewType:
        return cls(
            platform=preview.platform.value,
            channel_id=preview.channel_id,
            display_name=preview.display_name,
            avatar_url=preview.avatar_url,
        )


@strawberry.type
class ChannelsQuery:
    @strawberry.field(description="The channels the active account links.")
    async def linked_channels(self, info: Info) -> list[LinkedChannelType]:
        ctx = info.context
        listed = await service.list_for(ctx.resources.db, ctx.resources.settings, ctx.principal)
        return [LinkedChannelType.of(h.channel, h.stale) for h in listed]

    @strawberry.field(description="What the platform answers about a channel, without linking it.")
    async def preview_channel(self, info: Info, platform: str, channel: str) -> ChannelPreviewType:
        res = info.context.resources
        preview = await service.preview_for(
            res.http, res.settings, info.context.principal, platform, channel
        )
        return ChannelPreviewType.of(preview)


@strawberry.type
class ChannelsMutation:
    @strawberry.mutation(description="Link a channel (login, handle, URL or id) on a platform.")
    async def link_channel(self, info: Info, platform: str, channel: str) -> LinkedChannelType:
        ctx = info.context
        res = ctx.resources
        linked = await service.link_for(
            res.db, res.http, res.settings, ctx.principal, platform, channel
        )
        return LinkedChannelType.of(linked)

    @strawberry.mutation(description="Unlink the account's channel on a platform.")
    async def unlink_channel(self, info: Info, platform: str) -> bool:
        ctx = info.context
        await service.unlink_for(ctx.resources.db, ctx.resources.redis, ctx.principal, platform)
        return True
