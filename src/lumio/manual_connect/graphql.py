"""GraphQL: spotifyManualStatus, startSpotifyManual, stopSpotifyManual."""

from __future__ import annotations

import strawberry

from lumio.kit.graphql import Info
from lumio.manual_connect import service
from lumio.manual_connect.schemas import SpotifyManualStatus


@strawberry.experimental.pydantic.type(
    model=SpotifyManualStatus, all_fields=True, name="SpotifyManualStatus"
)
class SpotifyManualStatusType:
    pass


async def _status(info: Info) -> SpotifyManualStatus:
    ctx = info.context
    return await service.status(ctx.resources.redis, ctx.principal)


async def _start(info: Info) -> SpotifyManualStatus:
    ctx = info.context
    ttl = int(ctx.resources.settings.api.manual_connect_ttl.total_seconds())
    return await service.start(ctx.resources.redis, ctx.principal, ttl, ctx.resources.db)


@strawberry.type
class ManualConnectQuery:
    spotify_manual_status: SpotifyManualStatus = strawberry.field(
        resolver=_status, graphql_type=SpotifyManualStatusType
    )


@strawberry.type
class ManualConnectMutation:
    start_spotify_manual: SpotifyManualStatus = strawberry.mutation(
        resolver=_start,
        graphql_type=SpotifyManualStatusType,
        description="Start (or renew) the manual connect for 30 minutes.",
    )

    @strawberry.mutation(description="Stop the manual connect; stopping an inactive one succeeds.")
    async def stop_spotify_manual(self, info: Info) -> bool:
        ctx = info.context
        return await service.stop(ctx.resources.redis, ctx.principal, ctx.resources.db)
