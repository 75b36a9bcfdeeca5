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
    rows = await service.read_channel_status(ctx.resources.db, ctx.principal)
    # Strawberry's pydantic type accepts only the model as its value (is_type_of).
    return [ChannelStatus.model_validate(dict(row)) for row in rows]


@strawberry.type
class ChannelStatusQuery:
    channel_status: list[ChannelStatus] = strawberry.field(
        resolver=_channel_status,
        graphql_type=list[ChannelStatusType],
        description="Live status of every platform of the active account.",
    )
