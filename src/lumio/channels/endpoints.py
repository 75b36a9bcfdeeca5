"""REST: /v1/channels (list, link, unlink)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import Field
from starlette.responses import Response

from lumio.channels import service
from lumio.channels.schemas import ChannelPreview, LinkedChannel
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors

router = APIRouter(prefix="/channels", tags=["linked channels"])


class LinkedChannelOut(ApiModel):
    platform: str
    channel_id: str
    display_name: str
    last_polled_at: datetime | None
    last_error: str | None
    error_kind: str | None = Field(description="The last error's kind (timeout, http_5xx, …)")
    error_since: datetime | None = Field(description="Since when the platform has not answered")
    stale: bool = Field(description="No answer for longer than 3 poll intervals")

    @classmethod
    def of(cls, channel: LinkedChannel, stale: bool = False) -> LinkedChannelOut:
        return cls(
            platform=channel.platform.value,
            channel_id=channel.channel_id,
            display_name=channel.display_name,
            last_polled_at=channel.last_polled_at,
            last_error=channel.last_error,
            error_kind=service.error_kind(channel.last_error),
            error_since=channel.error_since,
            stale=stale,
        )


class ChannelPreviewOut(ApiModel):
    platform: str
    channel_id: str
    display_name: str
    avatar_url: str | None

    @classmethod
    def of(cls, preview: ChannelPreview) -> ChannelPreviewOut:
        return cls(
            platform=preview.platform.value,
            channel_id=preview.channel_id,
            display_name=preview.display_name,
            avatar_url=preview.avatar_url,
        )


class LinkIn(ApiModel):
    platform: str = Field(description="twitch, youtube, kick or trovo")
    channel: str = Field(description="login, handle, URL or id", min_length=1, max_length=200)


@router.get("", response_model=list[LinkedChannelOut], responses=errors(401, 403))
async def list_channels(
    principal: CurrentPrincipal, resources: AppResources
) -> list[LinkedChannelOut]:
    listed = await service.list_for(resources.db, resources.settings, principal)
    return [LinkedChannelOut.of(h.channel, h.stale) for h in listed]


@router.get("/preview", response_model=ChannelPreviewOut, responses=errors(400, 401, 403, 404, 503))
async def preview_channel(
    principal: CurrentPrincipal,
    resources: AppResources,
    platform: str = Query(max_length=20),
    channel: str = Query(min_length=1, max_length=200),
) -> ChannelPreviewOut:
    """What the platform answers about a channel, without linking it."""
    preview = await service.preview_for(
        resources.http, resources.settings, principal, platform, channel
    )
    return ChannelPreviewOut.of(preview)


@router.post(
    "", response_model=LinkedChannelOut, status_code=201, responses=errors(400, 401, 403, 404, 503)
)
async def link_channel(
    body: LinkIn, principal: CurrentPrincipal, resources: AppResources
) -> LinkedChannelOut:
    linked = await service.link_for(
        resources.db, resources.http, resources.settings, principal, body.platform, body.channel
    )
    return LinkedChannelOut.of(linked)


@router.delete("/{platform}", status_code=204, responses=errors(400, 401, 403, 404))
async def unlink_channel(
    platform: str, principal: CurrentPrincipal, resources: AppResources
) -> Response:
    await service.unlink_for(resources.db, resources.redis, principal, platform)
    return Response(status_code=204)
