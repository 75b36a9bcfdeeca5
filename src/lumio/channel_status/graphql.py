"""GraphQL: the ChannelStatus type (from the one declaration in schemas.py), channelStatus."""

from __future__ import annotations

import strawberry

from lumio.channel_status import service
from lumio.channel_status.schemas import ChannelStatus, StatusRow
from lumio.kit.graphql import Info


@strawberry.experimental.pydantic.type(model=ChannelStatus, all_fields=True, name="ChannelStatus")
class ChannelStatusType:
    pass


# Rows are values of the type as they are (their columns are its fields): a model per row was
# ~6 % of a request's CPU (issue 15). Strawberry's pydantic type accepts only the model or an
# object cast to the type; a cast of the class casts every row.
strawberry.cast(ChannelStatusType, StatusRow)


async def _channel_status(info: Info) -> list[StatusRow]:
    ctx = info.context
    return await service.read_channel_status(ctx.resources.db, ctx.principal)


@strawberry.type
class ChannelStatusQuery:
    channel_status: list[StatusRow] = strawberry.field(
        resolver=_channel_status,
        graphql_type=list[ChannelStatusType],
        description="Live status of every platform of the active account.",
    )
