"""GraphQL: spotifyConnection, spotifyNowPlaying, spotifyHistory; linkSpotify,
completeSpotifyLink, unlinkSpotify. The types come from the views in schemas.py."""

from __future__ import annotations

import strawberry

from lumio.kit.graphql import Info
from lumio.spotify import service
from lumio.spotify.endpoints import CALLBACK_ROUTE
from lumio.spotify.schemas import Authorization, ConnectionView, NowPlayingView, Play


@strawberry.experimental.pydantic.type(
    model=ConnectionView, all_fields=True, name="SpotifyConnection"
)
class SpotifyConnectionType:
    pass


@strawberry.experimental.pydantic.type(
    model=Authorization, all_fields=True, name="SpotifyAuthorization"
)
class SpotifyAuthorizationType:
    pass


@strawberry.experimental.pydantic.type(
    model=NowPlayingView, all_fields=True, name="SpotifyNowPlaying"
)
class SpotifyNowPlayingType:
    pass


@strawberry.experimental.pydantic.type(model=Play, all_fields=True, name="SpotifyPlay")
class SpotifyPlayType:
    pass


async def _connection(info: Info) -> ConnectionView | None:
    ctx = info.context
    link = await service.connection(ctx.resources.db, ctx.principal)
    return None if link is None else link.view()


async def _now_playing(info: Info) -> NowPlayingView | None:
    ctx = info.context
    now = await service.current(ctx.resources.redis, ctx.principal)
    return None if now is None else now.view()


async def _history(info: Info, limit: int = 20) -> list[Play]:
    ctx = info.context
    return await service.history(ctx.resources.db, ctx.principal, limit)


async def _link(info: Info) -> Authorization:
    ctx = info.context
    callback = str(ctx.request.url_for(CALLBACK_ROUTE))
    return await service.start_link(
        ctx.resources.redis, ctx.resources.settings, ctx.principal, callback
    )


async def _complete_link(info: Info, code: str, state: str) -> ConnectionView:
    ctx = info.context
    res = ctx.resources
    link = await service.complete_link(
        res.db, res.redis, res.http, res.settings, ctx.principal, state, code
    )
    return link.view()


@strawberry.type
class SpotifyQuery:
    spotify_connection: ConnectionView | None = strawberry.field(
        resolver=_connection,
        graphql_type=SpotifyConnectionType | None,
        description="The linked Spotify account; null when none is linked.",
    )
    spotify_now_playing: NowPlayingView | None = strawberry.field(
        resolver=_now_playing,
        graphql_type=SpotifyNowPlayingType | None,
        description="What plays now; null when nothing is known.",
    )
    spotify_history: list[Play] = strawberry.field(
        resolver=_history,
        graphql_type=list[SpotifyPlayType],
        description="What the account played, newest first.",
    )


@strawberry.type
class SpotifyMutation:
    link_spotify: Authorization = strawberry.mutation(
        resolver=_link,
        graphql_type=SpotifyAuthorizationType,
        description="Start linking Spotify: send the browser to authorizeUrl.",
    )
    complete_spotify_link: ConnectionView = strawberry.mutation(
        resolver=_complete_link,
        graphql_type=SpotifyConnectionType,
        description="Complete a link with the code and state Spotify sent back to the browser.",
    )

    @strawberry.mutation(description="Unlink Spotify; polling stops, the play history stays.")
    async def unlink_spotify(self, info: Info) -> bool:
        ctx = info.context
        await service.unlink(ctx.resources.db, ctx.resources.redis, ctx.principal)
        return True
