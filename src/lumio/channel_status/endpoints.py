"""REST: GET /v1/channel-status."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from lumio.channel_status import service
from lumio.channel_status.schemas import ChannelStatus
from lumio.kit.deps import AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.request_auth import authenticate_request
from lumio.kit.resources import resources_of
from lumio.kit.views import rows_response

router = APIRouter(tags=["channel status"])


async def channel_status_route(request: Request) -> Response:
    """The same handler as a plain Starlette route, mounted ahead of the FastAPI one.

    This is the hottest endpoint; FastAPI's per-route machinery (dependency solving, nested
    routers) costs ~80 µs a request here, a third of the whole (bench/README.md); the app
    answers it ahead of its middleware too (lumio.api.hot). The FastAPI route below stays for
    the OpenAPI document; errors go through the same app handlers.
    """
    principal = await authenticate_request(request, request.method)
    rows = await service.read_channel_status(resources_of(request).db, principal)
    return rows_response(ChannelStatus, rows)


@router.get(
    "/channel-status",
    response_model=list[ChannelStatus],
    responses=errors(401, 403, 503),
    summary="Live status of every platform of the active account, ordered by platform",
)
async def get_channel_status(principal: CurrentPrincipal, resources: AppResources) -> Response:
    return rows_response(ChannelStatus, await service.read_channel_status(resources.db, principal))
