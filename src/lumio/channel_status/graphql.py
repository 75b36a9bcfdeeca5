"""GraphQL: the ChannelStatus type and the channelStatus query."""

from __future__ import annotations

from datetime import datetime

import strawberry

from lumio.channel_status import service
from lumio.channel_status.schemas import ChannelStatus as ChannelStatusRow
from lumio.kit.graphql import Info


@strawberry.type(name="ChannelStatus")
class ChannelStatusType:
    platform: str
    is_online: bool
    stream_title: str | None
    category: str | None
    viewer_count: int | None
    started_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, row: ChannelStatusRow) -> ChannelStatusType:
        return cls(
            platform=row.platform,
            is_online=row.is_online,
            stream_title=row.stream_title,
            category=row.category,
            viewer_count=row.viewer_count,
            started_at=row.started_at,
            updated_at=row.updated_at,
        )


@strawberry.type
class ChannelStatusQuery:
    @strawberry.field(description="Live status of every platform of the active account.")
    async def channel_status(self, info: Info) -> list[ChannelStatusType]:
        ctx = info.context
        rows = await service.read_channel_status(ctx.resources.db, ctx.principal)
        return [ChannelStatusType.of(row) for row in rows]
