"""GraphQL: spotifyConnection, spotifyNowPlaying, spotifyHistory; linkSpotify,
completeSpotifyLink, unlinkSpotify."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import strawberry

from lumio.kit.graphql import Info
from lumio.spotify import service
from lumio.spotify.endpoints import CALLBACK_ROUTE
from lumio.spotify.schemas import Authorization, Connection, NowPlaying, Play


@strawberry.type(name="SpotifyConnection")
class SpotifyConnectionType:
    spotify_user_id: str
    display_name: str | None
    scope: str
    status: str
    needs_reauthorization: bool
    status_detail: str | None
    linked_at: datetime
    polling: bool
    last_polled_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, link: Connection) -> SpotifyConnectionType:
        return cls(**asdict(link.view()))


@strawberry.type(name="SpotifyAuthorization")
class SpotifyAuthorizationType:
    authorize_url: str
    expires_at: datetime

    @classmethod
    def of(cls, authorization: Authorization) -> SpotifyAuthorizationType:
        return cls(authorize_url=authorization.authorize_url, expires_at=authorization.expires_at)


@strawberry.type(name="SpotifyNowPlaying")
class SpotifyNowPlayingType:
    kind: str
    is_playing: bool
    item_id: str | None
    title: str | None
    artists: list[str]
    album: str | None
    art_url: str | None
    url: str | None
    progress_ms: int | None
    duration_ms: int | None
    observed_at: datetime

    @classmethod
    def of(cls, now: NowPlaying) -> SpotifyNowPlayingType:
        return cls(**asdict(now.view()))


@strawberry.type(name="SpotifyPlay")
class SpotifyPlayType:
    kind: str
    item_id: str | None
    title: str
    artists: list[str]
    album: str | None
    art_url: str | None
    url: str | None
    duration_ms: int | None
    started_at: datetime

    @classmethod
    def of(cls, play: Play) -> SpotifyPlayType:
        return cls(
            kind=play.kind.value,
            item_id=play.item_id,
            title=play.title,
            artists=list(play.artists),
            album=play.album,
            art_url=play.art_url,
            url=play.url,
            duration_ms=play.duration_ms,
            started_at=play.started_at,
        )


@strawberry.type
class SpotifyQuery:
    @strawberry.field(description="The linked Spotify account; null when none is linked.")
    async def spotify_connection(self, info: Info) -> SpotifyConnectionType | None:
        ctx = info.context
        link = await service.connection(ctx.resources.db, ctx.principal)
        return None if link is None else SpotifyConnectionType.of(link)

    @strawberry.field(description="What plays now; null when nothing is known.")
    async def spotify_now_playing(self, info: Info) -> SpotifyNowPlayingType | None:
        ctx = info.context
        now = await service.current(ctx.resources.redis, ctx.principal)
        return None if now is None else SpotifyNowPlayingType.of(now)

    @strawberry.field(description="What the account played, newest first.")
    async def spotify_history(self, info: Info, limit: int = 20) -> list[SpotifyPlayType]:
        ctx = info.context
        plays = await service.history(ctx.resources.db, ctx.principal, limit)
        return [SpotifyPlayType.of(p) for p in plays]


@strawberry.type
class SpotifyMutation:
    @strawberry.mutation(description="Start linking Spotify: send the browser to authorizeUrl.")
    async def link_spotify(self, info: Info) -> SpotifyAuthorizationType:
        ctx = info.context
        callback = str(ctx.request.url_for(CALLBACK_ROUTE))
        authorization = await service.start_link(
            ctx.resources.redis, ctx.resources.settings, ctx.principal, callback
        )
        return SpotifyAuthorizationType.of(authorization)

    @strawberry.mutation(
        description="Complete a link with the code and state Spotify sent back to the browser."
    )
    async def complete_spotify_link(
        self, info: Info, code: str, state: str
    ) -> SpotifyConnectionType:
        ctx = info.context
        res = ctx.resources
        link = await service.complete_link(
            res.db, res.redis, res.http, res.settings, ctx.principal, state, code
        )
        return SpotifyConnectionType.of(link)

    @strawberry.mutation(description="Unlink Spotify; polling stops, the play history stays.")
    async def unlink_spotify(self, info: Info) -> bool:
        ctx = info.context
        await service.unlink(ctx.resources.db, ctx.resources.redis, ctx.principal)
        return True
