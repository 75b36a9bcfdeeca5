"""GraphQL: linkedChannels, linkChannel, unlinkChannel."""

from __future__ import annotations

import strawberry

from lumio.channels import service
from lumio.channels.schemas import ChannelPreview, LinkedChannel
from lumio.kit.graphql import Info


@strawberry.experimental.pydantic.type(model=LinkedChannel, all_fields=True, name="LinkedChannel")
class LinkedChannelType:
    pass


async def _linked_channels(info: Info) -> list[LinkedChannel]:
    ctx = info.context
    return await service.list_for(ctx.resources.db, ctx.resources.settings, ctx.principal)


async def _link_channel(info: Info, platform: str, channel: str) -> LinkedChannel:
    ctx = info.context
    res = ctx.resources
    return await service.link_for(
        res.db, res.redis, res.http, res.settings, ctx.principal, platform, channel
    )


@strawberry.experimental.pydantic.type(model=ChannelPreview, all_fields=True, name="ChannelPreview")
class ChannelPreviewType:
    pass


async def _preview_channel(info: Info, platform: str, channel: str) -> ChannelPreview:
    res = info.context.resources
    return await service.preview_for(
        res.http, res.settings, info.context.principal, platform, channel
    )


@strawberry.type
class ChannelsQuery:
    linked_channels: list[LinkedChannel] = strawberry.field(
        resolver=_linked_channels,
        graphql_type=list[LinkedChannelType],
        description="The channels the active account links.",
    )
    preview_channel: ChannelPreview = strawberry.field(
        resolver=_preview_channel,
        graphql_type=ChannelPreviewType,
        description="What the platform answers about a channel, without linking it.",
    )


@strawberry.type
class ChannelsMutation:
    link_channel: LinkedChannel = strawberry.mutation(
        resolver=_link_channel,
        graphql_type=LinkedChannelType,
        description="Link a channel (login, handle, URL or id) on a platform.",
    )

    @strawberry.mutation(description="Unlink the account's channel on a platform.")
    async def unlink_channel(self, info: Info, platform: str) -> bool:
        ctx = info.context
        await service.unlink_for(ctx.resources.db, ctx.resources.redis, ctx.principal, platform)
        return True
