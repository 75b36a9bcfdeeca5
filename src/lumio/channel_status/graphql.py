"""GraphQL: the ChannelStatus type (from the one declaration in schemas.py), channelStatus."""

from __future__ import annotations

import strawberry

from lumio.channel_status import service
from lumio.channel_status.schemas import ChannelStatus
from lumio.kit.graphql import Info


@strawberry.experimental.pydantic.type(model=ChannelStatus, all_fields=True, name="ChannelStatus")
class ChannelStatusType:
    pass


async def _channel_status(info: Info) -> list[ChannelStatus]:
    ctx = info.context
    return await service.read_channel_status(ctx.resources.db, ctx.principal)


@strawberry.type
class ChannelStatusQuery:
    channel_status: list[ChannelStatus] = strawberry.field(
        resolver=_channel_status,
        graphql_type=list[ChannelStatusType],
        description="Live status of every platform of the active account.",
    )
