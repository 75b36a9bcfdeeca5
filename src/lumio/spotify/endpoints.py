"""REST: /v1/spotify/connection (read, authorize, unlink), /v1/spotify/callback,
/v1/spotify/now-playing and /v1/spotify/history."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from lumio.kit.deps import AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.errors import LumioError
from lumio.spotify import service
from lumio.spotify.schemas import Authorization, ConnectionView, NowPlayingView, Play

router = APIRouter(prefix="/spotify", tags=["spotify"])

CALLBACK_ROUTE = "spotify_callback"


@router.get(
    "/connection",
    response_model=ConnectionView | None,
    responses=errors(401, 403),
    summary="The linked Spotify account (null when none is linked)",
)
async def get_connection(
    principal: CurrentPrincipal, resources: AppResources
) -> ConnectionView | None:
    link = await service.connection(resources.db, principal)
    return None if link is None else link.view()


@router.post(
    "/connection/authorize",
    response_model=Authorization,
    responses=errors(401, 403, 503),
    summary="Start linking Spotify: send the user's browser to authorizeUrl",
)
async def authorize(
    request: Request, principal: CurrentPrincipal, resources: AppResources
) -> Authorization:
    callback = str(request.url_for(CALLBACK_ROUTE))
    return await service.start_link(resources.redis, resources.settings, principal, callback)


@router.get(
    "/callback",
    name=CALLBACK_ROUTE,
    response_model=ConnectionView,
    responses=errors(400, 401, 403, 503),
    summary="Where Spotify sends the browser back; completes the link of the same session",
)
async def callback(
    principal: CurrentPrincipal,
    resources: AppResources,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> ConnectionView | Response:
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
    return link.view()


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
    response_model=NowPlayingView | None,
    responses=errors(401, 403, 503),
    summary="What plays now (null when nothing is known: not polled, or no recent answer)",
)
async def get_now_playing(
    principal: CurrentPrincipal, resources: AppResources
) -> NowPlayingView | None:
    now = await service.current(resources.redis, principal)
    return None if now is None else now.view()


@router.get(
    "/history",
    response_model=list[Play],
    responses=errors(400, 401, 403),
    summary="What the account played, newest first",
)
async def get_history(
    principal: CurrentPrincipal,
    resources: AppResources,
    limit: Annotated[int, Query(ge=1, le=service.HISTORY_MAX)] = 20,
) -> list[Play]:
    return await service.history(resources.db, principal, limit)
