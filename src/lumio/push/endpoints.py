"""The platforms' callbacks: /webhooks/{twitch,kick,youtube}, outside /v1, without user auth.

Each reads the raw body (signatures cover the exact bytes) and hands it to the service.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from lumio.kit.resources import resources_of
from lumio.push import service
from lumio.push.kick import PublicKeyCache

router = APIRouter(prefix="/webhooks", include_in_schema=False)


def _context(request: Request) -> service.PushContext:
    resources = resources_of(request)
    state = request.app.state
    # One cache of Kick's public key per process, made on the first Kick message.
    if getattr(state, "kick_keys", None) is None:
        state.kick_keys = PublicKeyCache()
    return service.PushContext(
        resources.db, resources.redis, resources.settings, resources.http, state.kick_keys
    )


def _render(reply: service.Reply) -> Response:
    if reply.status == 204:
        return Response(status_code=204)
    return PlainTextResponse(reply.body, reply.status)


@router.post("/twitch")
async def twitch(request: Request) -> Response:
    body = await request.body()
    return _render(await service.receive_twitch(_context(request), request.headers, body))


@router.post("/kick")
async def kick(request: Request) -> Response:
    body = await request.body()
    return _render(await service.receive_kick(_context(request), request.headers, body))


@router.get("/youtube")
async def youtube_intent(request: Request) -> Response:
    params = request.query_params
    return _render(await service.verify_youtube_intent(_context(request), params))


@router.post("/youtube")
async def youtube(request: Request) -> Response:
    body = await request.body()
    return _render(await service.receive_youtube(_context(request), request.headers, body))
