"""REST: GET /v1/events, the active account's live updates as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from fastapi import APIRouter, Request

from lumio.kit.deps import AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.errors import LumioError
from lumio.kit.permissions import Permission
from lumio.kit.problems import DATABASE_DOWN
from lumio.kit.request_auth import authenticate_request
from lumio.kit.resources import Resources
from lumio.live.hub import LiveHub, Subscription
from lumio.live.stream import AccountStream, EventStreamResponse, Verdict, verdict

router = APIRouter(tags=["live updates"])


@router.get(
    "/events",
    response_class=EventStreamResponse,
    status_code=200,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(401, 403, 429)},
    summary="Server-Sent Events of the active account: hello, status, resync, heartbeat, bye",
    description="At most LUMIO_SSE_MAX_PER_CREDENTIAL streams per credential and "
    "LUMIO_SSE_MAX_PER_PROCESS per server process; past them 429 with Retry-After.",
)
async def stream_events(
    request: Request, principal: CurrentPrincipal, resources: AppResources
) -> EventStreamResponse:
    account_id = principal.require(Permission.SPOTIFY_READ)
    hub: LiveHub = request.app.state.live_hub
    subscription = hub.open(account_id, principal.token_hash)
    return account_stream(request, resources, subscription)


def account_stream(
    request: Request, resources: Resources, subscription: Subscription
) -> EventStreamResponse:
    account_id = subscription.account_id

    async def recheck() -> Verdict:
        try:
            current = await authenticate_request(request, "GET")
        except LumioError:
            return verdict(None, account_id)
        except DATABASE_DOWN:
            return Verdict.ALLOWED  # ask again at the next recheck
        return verdict(current, account_id)

    def frames(client_gone: Callable[[], bool]) -> AsyncGenerator[bytes, None]:
        def stopping() -> bool:
            return client_gone() or resources.shutting_down.is_set()

        return AccountStream(subscription.received, account_id, recheck, stopping).frames()

    return EventStreamResponse(frames, subscription.close, subscription.wake)
