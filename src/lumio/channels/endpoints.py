"""REST: /v1/channels (list, link, unlink)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import Field
from starlette.responses import Response

from lumio.channels import service
from lumio.channels.schemas import LinkedChannel
from lumio.kit.deps import ApiModel, AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors

router = APIRouter(prefix="/channels", tags=["linked channels"])


class LinkedChannelOut(ApiModel):
    platform: str
    channel_id: str
    display_name: str
    last_polled_at: datetime | None
    last_error: str | None
    push_status: str
    push_last_message_at: datetime | None

    @classmethod
    def of(cls, channel: LinkedChannel) -> LinkedChannelOut:
        return cls(
            platform=channel.platform.value,
            channel_id=channel.channel_id,
            display_name=channel.display_name,
            last_polled_at=channel.last_polled_at,
            last_error=channel.last_error,
            push_status=channel.push_status,
            push_last_message_at=channel.push_last_message_at,
        )


class LinkIn(ApiModel):
    platform: str = Field(description="twitch, youtube, kick or trovo")
    channel: str = Field(description="login, handle, URL or id", min_length=1, max_length=200)


@router.get("", response_model=list[LinkedChannelOut], responses=errors(401, 403))
async def list_channels(
    principal: CurrentPrincipal, resources: AppResources
) -> list[LinkedChannelOut]:
    return [LinkedChannelOut.of(c) for c in await service.list_for(resources.db, principal)]


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
