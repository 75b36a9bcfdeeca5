"""Fake Trovo open API (PLATFORM_APIS.md §4 and §6): strict, stateful, driven from Python or HTTP.

Serves ``POST /openplatform/channels/id`` and ``POST /openplatform/getusers``, both requiring the
``Client-ID`` header and a JSON body. Channel state, planned failures, statistics and the
``/_control/`` interface are the ones every fake shares (see ``fakes/kick.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lumio.dev.fakes.state import (
    EpochClock,
    FailureMode,
    FakeChannel,
    FakePlatformState,
    blocked_response,
    control_routes,
    garbage_response,
    platform_route,
)

CHANNEL_PATH = "/openplatform/channels/id"
GETUSERS_PATH = "/openplatform/getusers"
MAX_USERNAMES = 100
# What Trovo sends for an id it does not know: a 200 with every field blank.
BLANK_CHANNEL: dict[str, object] = {
    "is_live": False,
    "category_id": "",
    "category_name": "",
    "live_title": "",
    "audi_type": "",
    "language_code": "",
    "thumbnail": "",
    "current_viewers": 0,
    "followers": 0,
    "streamer_info": "",
    "profile_pic": "",
    "channel_url": "",
    "created_at": "",
    "subscriber_num": 0,
    "username": "",
    "social_links": [],
    "started_at": "",
    "ended_at": "",
}


class FakeTrovoState(FakePlatformState):
    """Trovo's channels plus the client id it accepts."""

    def __init__(
        self, client_id: str = "lumio-dev-trovo", *, clock: EpochClock = time.time
    ) -> None:
        super().__init__(clock, first_id=100_000_000)
        self.client_id = client_id

    def reset(self) -> None:
        with self._lock:
            super().reset()
            # The HTTP status that carries the 11706 rate-limit body; the real one is unconfirmed
            # (PLATFORM_APIS.md §4.4), so tests try more than one.
            self.rate_limit_http_status = 429

    def channel_named(self, name: str) -> FakeChannel | None:
        """The stored channel of a username (no flapping, no read counted)."""
        return next((c for c in self.channels() if c.name == name.lower()), None)


def trovo_error(http_status: int, code: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"status": code, "error": error, "message": message}, http_status)


def invalid_parameters(message: str) -> JSONResponse:
    return trovo_error(400, 1002, "InvalidParameters", message)


def trovo_channel_json(channel: FakeChannel) -> dict[str, object]:
    return {
        "is_live": channel.live,
        "category_id": str(channel.category_id),
        "category_name": channel.category,
        "live_title": channel.title,
        "audi_type": "CHANNEL_AUDIENCE_TYPE_FAMILYFRIENDLY",
        "language_code": "EN",
        "thumbnail": "",
        "current_viewers": channel.viewers if channel.live else 0,
        "followers": 0,
        "streamer_info": "",
        "profile_pic": "",
        "channel_url": f"https://trovo.live/s/{channel.name}",
        "created_at": _epoch(channel.created_at),
        "subscriber_num": 0,
        "username": channel.name,
        "social_links": [],
        # The latest stream's start and end, live or not.
        "started_at": _epoch(channel.started_at),
        "ended_at": _epoch(channel.ended_at),
    }


def trovo_user_json(channel: FakeChannel) -> dict[str, object]:
    # On Trovo a user's id and channel id are the same number; both are strings.
    return {
        "user_id": channel.channel_id,
        "username": channel.name,
        "nickname": channel.display_name,
        "channel_id": channel.channel_id,
    }


def _epoch(value: float | None) -> str:
    return str(int(value)) if value else ""


def _trovo_failure(state: FakeTrovoState) -> Callable[[FailureMode], Response]:
    def render(mode: FailureMode) -> Response:
        if mode is FailureMode.SERVER_ERROR:
            return trovo_error(500, -1000, "InternalTimeout", "internal timeout, please retry")
        if mode is FailureMode.RATE_LIMITED:
            status = state.rate_limit_http_status
            return trovo_error(status, 11706, "RateLimitExceeded", "API rate limit exceeded")
        if mode is FailureMode.UNAUTHORIZED:
            return trovo_error(401, 10703, "AuthFailed", "authentication failed")
        if mode is FailureMode.GARBAGE:
            return garbage_response()
        return blocked_response(mode)

    return render


async def _json_object(request: Request, state: FakeTrovoState) -> dict[str, object] | Response:
    """The JSON object body of a request with the right Client-ID; Trovo's 400 otherwise."""
    if request.headers.get("client-id") != state.client_id:
        return trovo_error(400, 11701, "InvalidHeader", "missing or unknown Client-ID header")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return invalid_parameters("Content-Type must be application/json")
    try:
        body = json.loads(await request.body())
    except ValueError:
        return invalid_parameters("body is not JSON")
    if not isinstance(body, dict):
        return invalid_parameters("body must be a JSON object")
    return body


def _one_string(body: dict[str, object]) -> tuple[str, str] | None:
    """(key, value) when the body holds exactly one of channel_id (digits) or username."""
    if len(body) != 1:
        return None
    key, value = next(iter(body.items()))
    if not isinstance(value, str) or not value:
        return None
    if key == "channel_id" and value.isascii() and value.isdigit():
        return key, value
    return (key, value) if key == "username" else None


def create_app(state: FakeTrovoState) -> Starlette:
    render = _trovo_failure(state)

    async def channel_by_id(request: Request) -> Response:
        body = await _json_object(request, state)
        if isinstance(body, Response):
            return body
        query = _one_string(body)
        if query is None:
            return invalid_parameters("give channel_id (a string of digits) or username")
        key, value = query
        channel = state.read(value) if key == "channel_id" else state.read_name(value)
        return JSONResponse(BLANK_CHANNEL if channel is None else trovo_channel_json(channel))

    async def get_users(request: Request) -> Response:
        body = await _json_object(request, state)
        if isinstance(body, Response):
            return body
        names = body.get("user")
        if set(body) != {"user"} or not isinstance(names, list) or not 1 <= len(names) <= 100:
            return invalid_parameters(f"give user: 1..{MAX_USERNAMES} usernames")
        if not all(isinstance(name, str) and name for name in names):
            return invalid_parameters("usernames must be non-empty strings")
        found = [state.channel_named(name) for name in names]
        if any(channel is None for channel in found):
            # One bad name empties the whole answer (PLATFORM_APIS.md §4.2).
            return JSONResponse({"total": 0, "users": []})
        users = [trovo_user_json(channel) for channel in found if channel is not None]
        return JSONResponse({"total": len(users), "users": users})

    routes = [
        platform_route(state, "POST", CHANNEL_PATH, channel_by_id, render),
        platform_route(state, "POST", GETUSERS_PATH, get_users, render),
        *control_routes(state),
    ]
    return Starlette(routes=routes)
