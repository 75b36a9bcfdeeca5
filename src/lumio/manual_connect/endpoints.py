"""REST: /v1/spotify/manual-connect (GET status, POST start, DELETE stop)."""

from __future__ import annotations

from fastapi import APIRouter

from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.manual_connect import service
from lumio.manual_connect.schemas import SpotifyManualStatus

router = APIRouter(prefix="/spotify/manual-connect", tags=["spotify manual connect"])


class StartIn(ApiModel):
    """No fields: the period is the server's (30 minutes); anything sent is refused."""


class StoppedOut(ApiModel):
    stopped: bool


@router.get("", response_model=SpotifyManualStatus, responses=errors(401, 403, 503))
async def get_manual_connect(
    principal: CurrentPrincipal, resources: AppResources
) -> SpotifyManualStatus:
    return await service.status(resources.redis, principal)


@router.post(
    "",
    response_model=SpotifyManualStatus,
    responses=errors(401, 403, 503),
    summary="Start (or renew) the manual connect for 30 minutes",
)
async def start_manual_connect(
    principal: CurrentPrincipal, resources: AppResources, body: StartIn | None = None
) -> SpotifyManualStatus:
    del body  # validated (it may have no fields); nothing to use
    ttl = int(resources.settings.api.manual_connect_ttl.total_seconds())
    return await service.start(resources.redis, principal, ttl, resources.db)


@router.delete(
    "",
    response_model=StoppedOut,
    responses=errors(401, 403, 503),
    summary="Stop the manual connect; stopping an inactive one succeeds",
)
async def stop_manual_connect(principal: CurrentPrincipal, resources: AppResources) -> StoppedOut:
    return StoppedOut(stopped=await service.stop(resources.redis, principal, resources.db))
