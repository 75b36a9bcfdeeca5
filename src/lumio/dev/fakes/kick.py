"""Fake Kick API (PLATFORM_APIS.md §3 and §6): strict, stateful, driven from Python or over HTTP.

Serves ``POST /oauth/token`` (the id host), ``GET /public/v1/channels`` and
``GET /public/v1/livestreams`` (the API host) from one app: point both ``id_base`` and ``api_base``
at it. Channel state, failures, statistics and ``/_control/`` come from ``fakes/state.py``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lumio.dev.fakes.state import (
    EpochClock,
    FailureMode,
    FakeChannel,
    FakePlatformState,
    Handler,
    blocked_response,
    control_routes,
    garbage_response,
    iso_utc,
    platform_route,
)

APP_AUTH_PATH = "/oauth/token"
CHANNELS_PATH = "/public/v1/channels"
LIVESTREAMS_PATH = "/public/v1/livestreams"
MAX_CHANNEL_IDS = 50
# Go's zero time: what Kick shows as the start of a stream that is not running.
ZERO_TIME = "0001-01-01T00:00:00Z"
FORM_TYPE = "application/x-www-form-urlencoded"


class FakeKickState(FakePlatformState):
    """Kick's channels plus the app credentials it accepts and the tokens it has issued."""

    def __init__(
        self,
        client_id: str = "lumio-dev-kick",
        client_secret: str = "lumio-dev-kick-secret",  # noqa: S107 (a fake's own dev credential)
        *,
        clock: EpochClock = time.time,
        token_seconds: int = 7200,
    ) -> None:
        # Before the base __init__, whose reset() clears it.
        self._tokens: dict[str, float] = {}
        super().__init__(clock, first_id=1_000_000)
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_seconds = token_seconds

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._tokens.clear()

    def issue_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self.clock() + self.token_seconds
        return token

    def token_valid(self, token: str) -> bool:
        with self._lock:
            expires_at = self._tokens.get(token)
            return expires_at is not None and self.clock() < expires_at

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (expiry or revocation before its time)."""
        with self._lock:
            self._tokens.clear()


def kick_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    # gokick's error model: the message and a null data, with the HTTP status.
    return JSONResponse({"message": message, "data": None}, status_code=status, headers=headers)


def kick_channel_json(channel: FakeChannel) -> dict[str, object]:
    return {
        "banner_picture": "",
        "broadcaster_user_id": int(channel.channel_id),
        "category": _kick_category(channel),
        "channel_description": "",
        "slug": channel.name,
        "stream_title": channel.title,
        "stream": {
            "is_live": channel.live,
            "is_mature": False,
            "key": "",
            "url": "",
            "language": "en",
            "start_time": _kick_start(channel),
            "thumbnail": "",
            "viewer_count": channel.viewers if channel.live else 0,
            "custom_tags": [],
        },
    }


def kick_livestream_json(channel: FakeChannel) -> dict[str, object]:
    return {
        "broadcaster_user_id": int(channel.channel_id),
        "channel_id": int(channel.channel_id),
        "slug": channel.name,
        "stream_title": channel.title,
        "language": "en",
        "has_mature_content": False,
        "viewer_count": channel.viewers,
        "started_at": _kick_start(channel),
        "category": _kick_category(channel),
        "thumbnail": "",
        "profile_picture": "",
        "custom_tags": [],
    }


def _kick_category(channel: FakeChannel) -> dict[str, object]:
    return {"id": channel.category_id, "name": channel.category, "thumbnail": ""}


def _kick_start(channel: FakeChannel) -> str:
    return iso_utc(channel.started_at) if channel.live and channel.started_at else ZERO_TIME


def _kick_failure(state: FakeKickState) -> Callable[[FailureMode], Response]:
    def render(mode: FailureMode) -> Response:
        if mode is FailureMode.SERVER_ERROR:
            return kick_error(500, "Internal Server Error")
        if mode is FailureMode.RATE_LIMITED:
            return kick_error(429, "Too Many Requests", {"Retry-After": str(state.retry_after)})
        if mode is FailureMode.UNAUTHORIZED:
            return kick_error(401, "Unauthorized")
        if mode is FailureMode.GARBAGE:
            return garbage_response()
        return blocked_response(mode)

    return render


def _bearer_denied(request: Request, state: FakeKickState) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or not state.token_valid(token):
        return kick_error(401, "Unauthorized")
    return None


def _ids(values: list[str], name: str) -> list[str] | Response:
    """Repeated numeric ids, at most 50, each once; a 400 like Kick's otherwise."""
    if len(values) > MAX_CHANNEL_IDS:
        return kick_error(400, f"{name}: at most {MAX_CHANNEL_IDS} values")
    if not all(v.isascii() and v.isdigit() for v in values):
        return kick_error(400, f"{name}: must be integers")
    return list(dict.fromkeys(str(int(v)) for v in values))


@dataclass(frozen=True)
class _LivestreamsQuery:
    ids: list[str]
    limit: int
    category_id: int | None
    sort: str


def _livestreams_query(request: Request) -> _LivestreamsQuery | Response:
    ids = _ids(request.query_params.getlist("broadcaster_user_id"), "broadcaster_user_id")
    if isinstance(ids, Response):
        return ids
    limit = _int_param(request, "limit", 1, 100, 25)
    if isinstance(limit, Response):
        return limit
    category_id = _int_param(request, "category_id", 0, 2**31, -1)
    if isinstance(category_id, Response):
        return category_id
    sort = request.query_params.get("sort", "viewer_count")
    if sort not in ("viewer_count", "started_at"):
        return kick_error(400, "sort: viewer_count or started_at")
    return _LivestreamsQuery(ids, limit, category_id if category_id >= 0 else None, sort)


def _int_param(request: Request, name: str, low: int, high: int, default: int) -> int | Response:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        return kick_error(400, f"{name}: must be an integer in {low}..{high}")
    return int(raw)


def create_app(state: FakeKickState) -> Starlette:
    render = _kick_failure(state)

    async def token(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            form = parse_qs(
                (await request.body()).decode(), keep_blank_values=True, strict_parsing=True
            )
        except (UnicodeDecodeError, ValueError):
            form = {}
        fields = {key: values[0] for key, values in form.items() if len(values) == 1}
        if content_type != FORM_TYPE or fields != {
            "grant_type": "client_credentials",
            "client_id": state.client_id,
            "client_secret": state.client_secret,
        }:
            return JSONResponse({"error": "Invalid request"}, status_code=400)
        answer = {
            "access_token": state.issue_token(),
            "token_type": "Bearer",
            "expires_in": state.token_seconds,
        }
        return JSONResponse(answer)

    async def channels(request: Request) -> Response:
        if (denied := _bearer_denied(request, state)) is not None:
            return denied
        ids = _ids(request.query_params.getlist("broadcaster_user_id"), "broadcaster_user_id")
        slugs = request.query_params.getlist("slug")
        if isinstance(ids, Response):
            return ids
        if len(slugs) > MAX_CHANNEL_IDS:
            return kick_error(400, f"slug: at most {MAX_CHANNEL_IDS} values")
        if bool(ids) == bool(slugs):
            # An app token has no channel of its own: say which channels, one way.
            return kick_error(400, "give broadcaster_user_id or slug")
        found = [state.read(cid) for cid in ids] + [
            state.read_name(s) for s in dict.fromkeys(slugs)
        ]
        # Unknown channels are left out, with no 404: the call is a batch (KickDevDocs#231).
        data = [kick_channel_json(c) for c in found if c is not None]
        return JSONResponse({"data": data, "message": "OK"})

    async def livestreams(request: Request) -> Response:
        if (denied := _bearer_denied(request, state)) is not None:
            return denied
        query = _livestreams_query(request)
        if isinstance(query, Response):
            return query
        wanted = query.ids or [c.channel_id for c in state.channels()]
        seen = [c for c in (state.read(cid) for cid in wanted) if c is not None and c.live]
        seen = [c for c in seen if query.category_id in (None, c.category_id)]
        seen.sort(key=lambda c: c.viewers if query.sort == "viewer_count" else c.started_at or 0.0)
        # Offline channels are simply absent: an offline broadcaster answers "data": [].
        data = [kick_livestream_json(c) for c in reversed(seen)][: query.limit]
        return JSONResponse({"data": data, "message": "OK"})

    routes = [
        platform_route(state, "POST", APP_AUTH_PATH, token, render, fails_by_default=False),
        platform_route(state, "GET", CHANNELS_PATH, channels, render),
        platform_route(state, "GET", LIVESTREAMS_PATH, livestreams, render),
        *control_routes(state),
        Route("/_control/tokens/expire", _expire_tokens(state), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _expire_tokens(state: FakeKickState) -> Handler:
    async def expire(request: Request) -> Response:
        state.expire_tokens()
        return Response(status_code=204)

    return expire
