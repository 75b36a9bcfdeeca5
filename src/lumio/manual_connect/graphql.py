"""GraphQL: spotifyManualStatus, startSpotifyManual, stopSpotifyManual."""

from __future__ import annotations

import strawberry

from lumio.kit.graphql import Info
from lumio.manual_connect import service
from lumio.manual_connect.service import ManualStatus


@strawberry.type(name="SpotifyManualStatus")
class SpotifyManualStatusType:
    active: bool
    remaining_seconds: int | None

    @classmethod
    def of(cls, status: ManualStatus) -> SpotifyManualStatusType:
        return cls(active=status.active, remaining_seconds=status.remaining_seconds)


@strawberry.type
class ManualConnectQuery:
    @strawberry.field
    async def spotify_manual_status(self, info: Info) -> SpotifyManualStatusType:
        ctx = info.context
        return SpotifyManualStatusType.of(await service.status(ctx.resources.redis, ctx.principal))


@strawberry.type
class ManualConnectMutation:
    @strawberry.mutation(description="Start (or renew) the manual connect for 30 minutes.")
    async def start_spotify_manual(self, info: Info) -> SpotifyManualStatusType:
        ctx = info.context
        ttl = int(ctx.resources.settings.api.manual_connect_ttl.total_seconds())
        return SpotifyManualStatusType.of(
            await service.start(ctx.resources.redis, ctx.principal, ttl)
        )

    @strawberry.mutation(description="Stop the manual connect; stopping an inactive one succeeds.")
    async def stop_spotify_manual(self, info: Info) -> bool:
        ctx = info.context
        return await service.stop(ctx.resources.redis, ctx.principal)
