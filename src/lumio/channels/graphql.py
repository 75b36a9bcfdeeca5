"""GraphQL: linkedChannels, linkChannel, unlinkChannel."""

from __future__ import annotations

from datetime import datetime

import strawberry

from lumio.channels import service
from lumio.channels.schemas import LinkedChannel
from lumio.kit.graphql import Info


@strawberry.type(name="LinkedChannel")
class LinkedChannelType:
    platform: str
    channel_id: str
    display_name: str
    last_polled_at: datetime | None
    last_error: str | None
    push_status: str
    push_last_message_at: datetime | None

    @classmethod
    def of(cls, channel: LinkedChannel) -> LinkedChannelType:
        return cls(
            platform=channel.platform.value,
            channel_id=channel.channel_id,
            display_name=channel.display_name,
            last_polled_at=channel.last_polled_at,
            last_error=channel.last_error,
            push_status=channel.push_status,
            push_last_message_at=channel.push_last_message_at,
        )


@strawberry.type
class ChannelsQuery:
    @strawberry.field(description="The channels the active account links.")
    async def linked_channels(self, info: Info) -> list[LinkedChannelType]:
        ctx = info.context
        return [
            LinkedChannelType.of(c) for c in await service.list_for(ctx.resources.db, ctx.principal)
        ]


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
