"""Fake Kick API (PLATFORM_APIS.md §3 and §6): strict, stateful, driven from Python or over HTTP.

Serves ``POST /oauth/token`` (the id host), ``GET /public/v1/channels`` and
``GET /public/v1/livestreams`` (the API host) from one app: point both ``id_base`` and ``api_base``
at it. Channel state, failures, statistics and ``/_control/`` come from ``fakes/state.py``.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lumio.dev.fakes.push import Delivery, PushSender, Signing, SwitchIn
from lumio.dev.fakes.state import (
    ChannelPatch,
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
PUBLIC_KEY_PATH = "/public/v1/public-key"
SUBSCRIPTIONS_PATH = "/public/v1/events/subscriptions"
EVENTS = ("livestream.status.updated", "livestream.metadata.updated")


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    # One test key per process: generating RSA keys is slow, and any key proves the point.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_key_pem(key: rsa.RSAPrivateKey) -> str:
    public = key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def kick_signature(key: rsa.RSAPrivateKey, message_id: str, timestamp: str, body: bytes) -> str:
    """Kick's signature: RSA PKCS#1 v1.5 over SHA-256 of "id.timestamp.body", base64."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(key.sign(signed, padding.PKCS1v15(), hashes.SHA256())).decode()


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
        # Webhooks: the app's one URL (Kick's developer settings) and its subscriptions.
        self.webhook_url: str | None = None
        self.push = PushSender()

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._tokens.clear()
            self._subscriptions: dict[str, dict[str, Any]] = {}
            # What Kick signs with and serves at /public/v1/public-key; rotate_key() replaces it.
            self.signing_key = _signing_key()

    def update(self, channel_id: str, patch: ChannelPatch) -> FakeChannel:
        """Apply the change, then send the webhooks it causes."""
        with self._lock:
            before = self.channel(channel_id)
            after = super().update(channel_id, patch)
            if before is not None and before.live != after.live:
                self._emit("livestream.status.updated", after, _status_event(after))
            if before is not None and (before.title, before.category) != (
                after.title,
                after.category,
            ):
                self._emit("livestream.metadata.updated", after, _metadata_event(after))
            return after

    def subscribe(self, broadcaster_id: int, event: str, version: int) -> dict[str, Any]:
        with self._lock:
            subscription: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "app_id": self.client_id,
                "broadcaster_user_id": broadcaster_id,
                "event": event,
                "version": version,
                "method": "webhook",
                "created_at": iso_utc(self.clock()),
                "updated_at": iso_utc(self.clock()),
            }
            self._subscriptions[subscription["id"]] = subscription
            return dict(subscription)

    def subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._subscriptions.values()]

    def unsubscribe(self, subscription_id: str) -> bool:
        with self._lock:
            return self._subscriptions.pop(subscription_id, None) is not None

    def rotate_key(self) -> None:
        """Kick changes its key pair: messages are signed, and the key served, with a new one."""
        fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self._lock:
            self.signing_key = fresh

    def sign(self, message_id: str, timestamp: str, body: bytes) -> str:
        with self._lock:
            key = self.signing_key
        return kick_signature(key, message_id, timestamp, body)

    def _emit(self, event: str, channel: FakeChannel, payload: dict[str, Any]) -> None:
        url = self.webhook_url
        for subscription in self._subscriptions.values():
            if (
                url
                and subscription["event"] == event
                and str(subscription["broadcaster_user_id"]) == channel.channel_id
            ):
                self.push.notify(
                    _builder(url, subscription, payload, self.sign),
                    f"{event}:{channel.channel_id}",
                )

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


def _builder(
    url: str,
    subscription: dict[str, Any],
    payload: dict[str, Any],
    sign: Callable[[str, str, bytes], str],
) -> Callable[[Signing], Delivery]:
    body = json.dumps(payload).encode()

    def build(signing: Signing) -> Delivery:
        message_id = uuid.uuid4().hex.upper()[:26]
        timestamp = signing.timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = sign(message_id, timestamp, body)
        if signing.corrupt:
            signature = sign(message_id, timestamp, body + b" ")
        headers = {
            "Content-Type": "application/json",
            "Kick-Event-Message-Id": message_id,
            "Kick-Event-Subscription-Id": subscription["id"],
            "Kick-Event-Signature": signature,
            "Kick-Event-Message-Timestamp": timestamp,
            "Kick-Event-Type": subscription["event"],
            "Kick-Event-Version": str(subscription["version"]),
        }
        return Delivery(url, headers, body)

    return build


def _broadcaster(channel: FakeChannel) -> dict[str, Any]:
    return {
        "is_anonymous": False,
        "user_id": int(channel.channel_id),
        "username": channel.display_name,
        "is_verified": False,
        "profile_picture": "",
        "channel_slug": channel.name,
        "identity": None,
    }


def _status_event(channel: FakeChannel) -> dict[str, Any]:
    started = channel.started_at if channel.live else None
    return {
        "broadcaster": _broadcaster(channel),
        "is_live": channel.live,
        "title": channel.title,
        "started_at": iso_utc(started) if started is not None else None,
        "ended_at": iso_utc(channel.ended_at)
        if channel.ended_at is not None and not channel.live
        else None,
    }


def _metadata_event(channel: FakeChannel) -> dict[str, Any]:
    return {
        "broadcaster": _broadcaster(channel),
        "metadata": {
            "title": channel.title,
            "language": "en",
            "has_mature_content": False,
            "category": {"id": channel.category_id, "name": channel.category, "thumbnail": ""},
        },
    }


class _SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    broadcaster_user_id: int
    events: list[dict[str, Any]]
    method: str = "webhook"


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

    async def public_key(request: Request) -> Response:
        pem = public_key_pem(state.signing_key)
        return JSONResponse({"data": {"public_key": pem}, "message": "OK"})

    async def subscriptions(request: Request) -> Response:
        if (denied := _bearer_denied(request, state)) is not None:
            return denied
        if request.method == "GET":
            return JSONResponse({"data": state.subscriptions(), "message": "OK"})
        if request.method == "DELETE":
            for subscription_id in request.query_params.getlist("id"):
                state.unsubscribe(subscription_id)
            return Response(status_code=204)
        return await _subscribe(state, request)

    routes = [
        # Counted like the platform's other routes: tests bound how often receivers fetch it.
        platform_route(state, "GET", PUBLIC_KEY_PATH, public_key, render, fails_by_default=False),
        Route(SUBSCRIPTIONS_PATH, subscriptions, methods=["GET", "POST", "DELETE"]),
        Route("/_control/push", _push_switch(state), methods=["POST"]),
        Route("/_control/push/webhook-url", _webhook_url(state), methods=["POST"]),
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


async def _subscribe(state: FakeKickState, request: Request) -> Response:
    try:
        wanted = _SubscribeIn.model_validate_json(await request.body())
    except ValidationError:
        return kick_error(400, "invalid request")
    if wanted.method != "webhook" or not wanted.events:
        return kick_error(400, "method must be webhook and events must not be empty")
    data = []
    for event in wanted.events:
        name, version = event.get("name"), event.get("version")
        if name not in EVENTS or version != 1:
            data.append(
                {
                    "name": name,
                    "version": version,
                    "subscription_id": None,
                    "error": "unknown event",
                }
            )
            continue
        created = state.subscribe(wanted.broadcaster_user_id, str(name), 1)
        data.append({"name": name, "version": 1, "subscription_id": created["id"], "error": None})
    return JSONResponse({"data": data, "message": "OK"})


def _push_switch(state: FakeKickState) -> Handler:
    async def switch(request: Request) -> Response:
        wanted = SwitchIn.model_validate_json(await request.body())
        state.push.switch(wanted.mode, wanted.count, wanted.seconds)
        return JSONResponse(wanted.model_dump())

    return switch


def _webhook_url(state: FakeKickState) -> Handler:
    async def set_url(request: Request) -> Response:
        state.webhook_url = str((await request.json())["url"])
        return JSONResponse({"url": state.webhook_url})

    return set_url
