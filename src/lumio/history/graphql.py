"""GraphQL: streamSessions (a connection), streamSession, broadcasts, streamStats.

The object types are the service's own view classes (``schemas.py``), wrapped once here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

import strawberry

from lumio.history import schemas, service
from lumio.kit.graphql import Info

SegmentType = strawberry.type(schemas.SegmentView, name="StreamSegment")
ViewerSeriesType = strawberry.type(schemas.ViewerSeriesView, name="ViewerSeries")
TrackType = strawberry.type(schemas.TrackView, name="StreamTrack")
StreamSessionType = strawberry.type(schemas.StreamSessionView, name="StreamSession")
StreamSessionDetailType = strawberry.type(
    schemas.StreamSessionDetailView, name="StreamSessionDetail"
)
BroadcastType = strawberry.type(schemas.BroadcastView, name="Broadcast")
PlatformStatsType = strawberry.type(schemas.PlatformStatsView, name="PlatformStreamStats")
StreamStatsType = strawberry.type(schemas.StreamStatsView, name="StreamStats")

N = TypeVar("N")


@strawberry.type(name="HistoryPageInfo")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[N]):
    cursor: str
    node: N


@strawberry.type
class Connection(Generic[N]):
    edges: list[Edge[N]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[N]:
        return [edge.node for edge in self.edges]


def _connection(
    page: schemas.Page[schemas.StreamSessionView] | schemas.Page[schemas.BroadcastView],
) -> Connection:  # type: ignore[type-arg]
    edges = [Edge(cursor=service.encode_cursor(n.started_at, n.id), node=n) for n in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.next_cursor is not None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


StreamSessionConnection = Connection[StreamSessionType]  # type: ignore[valid-type]
BroadcastConnection = Connection[BroadcastType]  # type: ignore[valid-type]


@strawberry.type
class HistoryQuery:
    @strawberry.field(description="The account's stream sessions, newest first.")
    async def stream_sessions(
        self,
        info: Info,
        first: int = service.DEFAULT_LIMIT,
        after: str | None = None,
        platform: str | None = None,
    ) -> StreamSessionConnection:
        ctx = info.context
        page = await service.list_sessions(
            ctx.resources.db, ctx.principal, platform=platform, cursor=after, limit=first
        )
        return _connection(page)

    @strawberry.field(description="One session: segments, viewer curve (raw, 1m, 5m), tracks.")
    async def stream_session(
        self, info: Info, id: strawberry.ID, resolution: str = "raw"
    ) -> StreamSessionDetailType | None:  # type: ignore[valid-type]
        ctx = info.context
        return await service.session_detail(ctx.resources.db, ctx.principal, str(id), resolution)

    @strawberry.field(description="Overlapping sessions (simulcasts) as broadcasts, newest first.")
    async def broadcasts(
        self, info: Info, first: int = service.DEFAULT_LIMIT, after: str | None = None
    ) -> BroadcastConnection:
        ctx = info.context
        page = await service.list_broadcasts(
            ctx.resources.db, ctx.principal, cursor=after, limit=first
        )
        return _connection(page)

    @strawberry.field(description="Streams, hours live, mean and peak viewers per platform.")
    async def stream_stats(
        self,
        info: Info,
        since: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        until: Annotated[datetime | None, strawberry.argument(name="to")] = None,
    ) -> StreamStatsType:  # type: ignore[valid-type]
        ctx = info.context
        return await service.stream_stats(ctx.resources.db, ctx.principal, since, until)
