"""REST: /v1/channels (list, link, unlink)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.responses import Response

from lumio.channels import service
from lumio.channels.schemas import ChannelPreview, LinkedChannel
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors

router = APIRouter(prefix="/channels", tags=["linked channels"])


class LinkIn(ApiModel):
    platform: str = Field(description="twitch, youtube, kick or trovo")
    channel: str = Field(description="login, handle, URL or id", min_length=1, max_length=200)


@router.get("", response_model=list[LinkedChannel], responses=errors(401, 403))
async def list_channels(
    principal: CurrentPrincipal, resources: AppResources
) -> list[LinkedChannel]:
    return await service.list_for(resources.db, resources.settings, principal)


@router.get("/preview", response_model=ChannelPreview, responses=errors(400, 401, 403, 404, 503))
async def preview_channel(
    principal: CurrentPrincipal,
    resources: AppResources,
    platform: str = Query(max_length=20),
    channel: str = Query(min_length=1, max_length=200),
) -> ChannelPreview:
    """What the platform answers about a channel, without linking it."""
    return await service.preview_for(
        resources.http, resources.settings, principal, platform, channel
    )


@router.post(
    "", response_model=LinkedChannel, status_code=201, responses=errors(400, 401, 403, 404, 503)
)
async def link_channel(
    body: LinkIn, principal: CurrentPrincipal, resources: AppResources
) -> LinkedChannel:
    return await service.link_for(
        resources.db,
        resources.redis,
        resources.http,
        resources.settings,
        principal,
        body.platform,
        body.channel,
    )


@router.delete("/{platform}", status_code=204, responses=errors(400, 401, 403, 404))
async def unlink_channel(
    platform: str, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    await service.unlink_for(resources.db, resources.redis, principal, platform)
    return Response(status_code=204)
