"""REST: /v1/streams (list, one session, stats, CSV) and /v1/broadcasts."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from datetime import datetime
from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Query
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from lumio.history import service
from lumio.history.schemas import Resolution
from lumio.kit.deps import AppResources, CurrentPrincipal
from lumio.kit.deps import problem_responses as errors
from lumio.kit.permissions import Permission
from lumio.kit.views import json_response

router = APIRouter(tags=["stream history"])

Cursor = Annotated[str | None, Query(description="nextCursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT)]
Since = Annotated[datetime | None, Query(alias="from", description="ISO 8601; UTC if no zone")]
Until = Annotated[datetime | None, Query(alias="to", description="ISO 8601, exclusive")]
PlatformFilter = Annotated[str | None, Query(description="twitch, youtube, kick or trovo")]


def camel(value: object) -> object:
    """A view as JSON-ready data with the GraphQL (camelCase) names; orjson does the rest."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {to_camel(f.name): camel(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        return [camel(item) for item in value]
    if isinstance(value, UUID):
        # asyncpg's own UUID class, which orjson does not know.
        return str(value)
    # Lists of numbers (a viewer curve's columns) go out as they are.
    return value


class EndedSessionCache:
    """Rendered answers of ended sessions, which no longer change (until retention downsamples
    them, hence the short life), keyed by account, session and resolution: a dashboard or
    client re-reading a finished stream costs no queries. Live sessions are always read."""

    def __init__(self, seconds: float = 60.0, size: int = 256) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: OrderedDict[tuple[object, ...], tuple[float, bytes]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        self._entries[key] = (time.monotonic() + self.seconds, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


ended_sessions = EndedSessionCache()


@router.get("/streams", responses=errors(400, 401, 403), summary="Sessions, newest first")
async def list_streams(
    principal: CurrentPrincipal,
    resources: AppResources,
    cursor: Cursor = None,
    limit: Limit = service.DEFAULT_LIMIT,
    platform: PlatformFilter = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    page = await service.list_sessions(
        resources.db, principal, platform=platform, since=since, until=until, cursor=cursor,
        limit=limit,
    )  # fmt: skip
    return json_response(camel(page))


@router.get(
    "/streams.csv",
    responses=errors(400, 401, 403),
    summary="Sessions as CSV",
    response_class=Response,
)
async def streams_csv(
    principal: CurrentPrincipal,
    resources: AppResources,
    platform: PlatformFilter = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    text = await service.sessions_csv(
        resources.db, principal, platform=platform, since=since, until=until
    )
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="streams.csv"'},
    )


@router.get(
    "/streams/stats",
    responses=errors(400, 401, 403),
    summary="Streams, hours live, mean and peak viewers per platform (default: last 30 days)",
)
async def stream_stats(
    principal: CurrentPrincipal, resources: AppResources, since: Since = None, until: Until = None
) -> Response:
    stats = await service.stream_stats(resources.db, principal, since, until)
    return json_response(camel(stats))


@router.get(
    "/streams/{session_id}",
    responses=errors(400, 401, 403, 404),
    summary="One session: segments, viewer curve and the tracks played",
)
async def get_stream(
    session_id: str,
    principal: CurrentPrincipal,
    resources: AppResources,
    resolution: Resolution = Resolution.RAW,
) -> Response:
    # The permission is checked before the cache is asked; the key holds the account.
    key = (principal.require(Permission.SPOTIFY_READ), session_id, resolution)
    body = ended_sessions.get(key)
    if body is None:
        detail = await service.session_detail(resources.db, principal, session_id, resolution.value)
        body = orjson.dumps(camel(detail))
        if detail.session.ended_at is not None:
            ended_sessions.put(key, body)
    return Response(body, media_type="application/json")


@router.get(
    "/broadcasts",
    responses=errors(400, 401, 403),
    summary="Overlapping sessions (a simulcast) as one broadcast, newest first",
)
async def list_broadcasts(
    principal: CurrentPrincipal,
    resources: AppResources,
    cursor: Cursor = None,
    limit: Limit = service.DEFAULT_LIMIT,
) -> Response:
    page = await service.list_broadcasts(resources.db, principal, cursor=cursor, limit=limit)
    return json_response(camel(page))
