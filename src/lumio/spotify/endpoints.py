"""REST: /v1/spotify/connection (read, authorize, unlink), /v1/spotify/callback,
/v1/spotify/now-playing and /v1/spotify/history."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.errors import LumioError
from lumio.spotify import service
from lumio.spotify.schemas import Authorization, Connection, NowPlaying, Play

router = APIRouter(prefix="/spotify", tags=["spotify"])

CALLBACK_ROUTE = "spotify_callback"


class SpotifyConnectionOut(ApiModel):
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
    def of(cls, link: Connection) -> SpotifyConnectionOut:
        return cls(**asdict(link.view()))


class SpotifyAuthorizationOut(ApiModel):
    authorize_url: str
    expires_at: datetime

    @classmethod
    def of(cls, authorization: Authorization) -> SpotifyAuthorizationOut:
        return cls(authorize_url=authorization.authorize_url, expires_at=authorization.expires_at)


class SpotifyNowPlayingOut(ApiModel):
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
    def of(cls, now: NowPlaying) -> SpotifyNowPlayingOut:
        return cls(**asdict(now.view()))


class SpotifyPlayOut(ApiModel):
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
    def of(cls, play: Play) -> SpotifyPlayOut:
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


@router.get(
    "/connection",
    response_model=SpotifyConnectionOut | None,
    responses=errors(401, 403),
    summary="The linked Spotify account (null when none is linked)",
)
async def get_connection(
    principal: CurrentPrincipal, resources: AppResources
) -> SpotifyConnectionOut | None:
    link = await service.connection(resources.db, principal)
    return None if link is None else SpotifyConnectionOut.of(link)


@router.post(
    "/connection/authorize",
    response_model=SpotifyAuthorizationOut,
    responses=errors(401, 403, 503),
    summary="Start linking Spotify: send the user's browser to authorizeUrl",
)
async def authorize(
    request: Request, principal: CurrentPrincipal, resources: AppResources
) -> SpotifyAuthorizationOut:
    callback = str(request.url_for(CALLBACK_ROUTE))
    authorization = await service.start_link(
        resources.redis, resources.settings, principal, callback
    )
    return SpotifyAuthorizationOut.of(authorization)


@router.get(
    "/callback",
    name=CALLBACK_ROUTE,
    response_model=SpotifyConnectionOut,
    responses=errors(400, 401, 403, 503),
    summary="Where Spotify sends the browser back; completes the link of the same session",
)
async def callback(
    principal: CurrentPrincipal,
    resources: AppResources,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> SpotifyConnectionOut | Response:
    res = resources
    back = res.settings.spotify.link_return_url
    try:
        link = await service.complete_link(
            res.db, res.redis, res.http, res.settings, principal, state, code, error
        )
    except LumioError as failure:
        if not back:
            raise
        return RedirectResponse(_back(back, spotify="error", code=failure.code), status_code=303)
    if back:
        return RedirectResponse(_back(back, spotify="linked"), status_code=303)
    return SpotifyConnectionOut.of(link)


def _back(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


@router.delete(
    "/connection",
    status_code=204,
    responses=errors(401, 403, 404),
    summary="Unlink Spotify; polling stops, the play history stays",
)
async def unlink(principal: CurrentPrincipal, resources: AppResources) -> Response:
    await service.unlink(resources.db, resources.redis, principal)
    return Response(status_code=204)


@router.get(
    "/now-playing",
    response_model=SpotifyNowPlayingOut | None,
    responses=errors(401, 403, 503),
    summary="What plays now (null when nothing is known: not polled, or no recent answer)",
)
async def get_now_playing(
    principal: CurrentPrincipal, resources: AppResources
) -> SpotifyNowPlayingOut | None:
    now = await service.current(resources.redis, principal)
    return None if now is None else SpotifyNowPlayingOut.of(now)


@router.get(
    "/history",
    response_model=list[SpotifyPlayOut],
    responses=errors(400, 401, 403),
    summary="What the account played, newest first",
)
async def get_history(
    principal: CurrentPrincipal,
    resources: AppResources,
    limit: Annotated[int, Query(ge=1, le=service.HISTORY_MAX)] = 20,
) -> list[SpotifyPlayOut]:
    plays = await service.history(resources.db, principal, limit)
    return [SpotifyPlayOut.of(p) for p in plays]
