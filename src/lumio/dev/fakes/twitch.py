"""A strict, stateful fake Twitch: the id host (/oauth2/*) and Helix (/helix/*) on one app.

Shapes, limits and error bodies follow PLATFORM_APIS.md §1 and §6. Tests drive it through
``FakeTwitchState`` methods; a dev simulator in another process drives it through ``/_control/*``.
Serve it with ``FakeServer(create_app(state))`` and point both ``id_base`` and ``api_base`` at it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import math
import secrets
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lumio.dev.fakes.push import Delivery, PushSender, Signing, SwitchIn, rfc3339_nanos

Clock = Callable[[], datetime]
FailMode = Literal["5xx", "429", "garbage", "timeout", "401"]
# "helix" = streams and users, "id" = token and validate, or one endpoint by name.
FailTarget = Literal["helix", "id", "token", "validate", "streams", "users"]

DEFAULT_CLIENT_ID = "fake-twitch-client-id"
DEFAULT_CLIENT_SECRET = "fake-twitch-client-secret"  # noqa: S105 - a fake's fixed test credential
# What the twitch-cli mock and a sample real answer give: about 58 days.
DEFAULT_TOKEN_TTL = 5011271
MAX_EACH_PARAMETER = 100
CREATED_AT = "2016-12-14T20:32:28Z"
HELIX_TARGETS = {"helix": {"streams", "users"}, "id": {"token", "validate"}}
EVENTSUB_VERSIONS = {"stream.online": "1", "stream.offline": "1", "channel.update": "2"}
MAX_TOTAL_COST = 10_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- state ---


@dataclass
class FakeChannel:
    id: str
    login: str
    display_name: str
    live: bool = False
    title: str = ""
    category: str = ""
    viewers: int = 0
    language: str = "en"
    tags: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    stream_id: str | None = None
    # At go-live Helix shows a stream, then [], then the stream again: while flapping, every other
    # /helix/streams request leaves the channel out (same stream id and started_at when it is back).
    flapping: bool = False
    flap_seen: int = 0
    # Helix behind EventSub: the next this many /helix/streams reads leave the channel out.
    lag_reads: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = _rfc3339(self.started_at) if self.started_at else None
        return data


@dataclass(frozen=True, slots=True)
class FakeTwitchStats:
    total: int
    by_endpoint: dict[str, int]
    by_status: dict[str, int]
    # user_id/user_login values sent to /helix/streams, to check batching in benchmarks.
    stream_ids_requested: int
    failures_injected: int


@dataclass(frozen=True, slots=True)
class _Token:
    client_id: str
    expires_at: datetime


@dataclass
class _Bucket:
    points: float
    updated: datetime


@dataclass
class _Failure:
    mode: FailMode
    remaining: int
    target: FailTarget
    status: int
    reset_in: float
    delay: float

    def applies_to(self, endpoint: str) -> bool:
        return endpoint == self.target or endpoint in HELIX_TARGETS.get(self.target, set())


@dataclass(frozen=True, slots=True)
class _RateAnswer:
    allowed: bool
    headers: dict[str, str]


class FakeTwitchState:
    """Channels, tokens, rate buckets, injected failures and counters, safe across threads."""

    def __init__(
        self,
        clients: Mapping[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        rate_limit: int = 800,
        rate_window: float = 60.0,
    ) -> None:
        self.clients = dict(clients or {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
        self.clock = clock
        self.token_ttl = token_ttl
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self._lock = threading.Lock()
        self._channels: dict[str, FakeChannel] = {}
        self._tokens: dict[str, _Token] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._failure: _Failure | None = None
        self._ids = itertools.count(100_000_001)
        self._stream_ids = itertools.count(40_000_000_001)
        # EventSub: subscriptions by id, and the sender that delivers their messages.
        self._subscriptions: dict[str, _Subscription] = {}
        # Subscription ids by broadcaster, so a channel change finds its own at any scale.
        self._by_broadcaster: dict[str, set[str]] = {}
        self.push = PushSender()
        self._reset_counters()

    # --- control: channels ---

    def add_channel(
        self,
        login: str,
        *,
        channel_id: str | None = None,
        display_name: str | None = None,
        live: bool = False,
        title: str = "",
        category: str = "",
        viewers: int = 0,
        flapping: bool = False,
    ) -> FakeChannel:
        with self._lock:
            new_id = channel_id or str(next(self._ids))
            if new_id in self._channels:
                raise ValueError(f"channel {new_id} exists")
            channel = FakeChannel(new_id, login.lower(), display_name or login)
            self._channels[new_id] = channel
            self._apply(channel, live, title, category, viewers, flapping)
            return replace(channel)

    def update_channel(
        self,
        channel_id: str,
        *,
        live: bool | None = None,
        title: str | None = None,
        category: str | None = None,
        viewers: int | None = None,
        flapping: bool | None = None,
    ) -> FakeChannel:
        """Change what Helix shows; going live starts a new stream (new id, started_at = now)."""
        with self._lock:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise KeyError(channel_id)
            self._apply(channel, live, title, category, viewers, flapping)
            return replace(channel)

    def set_live(self, channel_id: str, **changes: Any) -> FakeChannel:
        return self.update_channel(channel_id, live=True, **changes)

    def set_offline(self, channel_id: str) -> FakeChannel:
        return self.update_channel(channel_id, live=False)

    def lag(self, channel_id: str, reads: int) -> None:
        """Helix leaves the channel out of its next ``reads`` answers (its cache lags)."""
        with self._lock:
            self._channels[channel_id].lag_reads = reads

    def channel(self, channel_id: str) -> FakeChannel:
        with self._lock:
            return replace(self._channels[channel_id])

    def channels(self) -> list[FakeChannel]:
        with self._lock:
            return [replace(c) for c in self._channels.values()]

    def _apply(
        self,
        channel: FakeChannel,
        live: bool | None,
        title: str | None,
        category: str | None,
        viewers: int | None,
        flapping: bool | None,
    ) -> None:
        was_live, details = channel.live, (channel.title, channel.category)
        if live is True and not channel.live:
            channel.started_at = self.clock().replace(microsecond=0)
            channel.stream_id = str(next(self._stream_ids))
            channel.flap_seen = 0
        if live is False:
            channel.started_at = channel.stream_id = None
        channel.live = channel.live if live is None else live
        channel.title = channel.title if title is None else title
        channel.category = channel.category if category is None else category
        channel.viewers = channel.viewers if viewers is None else viewers
        channel.flapping = channel.flapping if flapping is None else flapping
        if channel.live and not was_live:
            self._emit("stream.online", channel)
        if was_live and not channel.live:
            self._emit("stream.offline", channel)
        if (channel.title, channel.category) != details:
            self._emit("channel.update", channel)

    # --- EventSub (webhook transport) ---

    def create_subscription(self, request: SubscriptionIn) -> dict[str, Any]:
        """Store a subscription and send its verification challenge to the callback."""
        with self._lock:
            for existing in self._subscriptions.values():
                if (
                    existing.same_as(request)
                    and existing.status != "webhook_callback_verification_failed"
                ):
                    raise HelixRejection(409, "subscription already exists")
            subscription = _Subscription.of(request, _rfc3339(self.clock()))
            self._store(subscription)
            challenge = secrets.token_urlsafe(24)
            body = {"challenge": challenge, "subscription": subscription.to_json()}
            self.push.verify(
                _builder(subscription, "webhook_callback_verification", body),
                lambda answer: self._verified(subscription.id, challenge, answer),
            )
            return subscription.to_json()

    def adopt_subscriptions(self, requests: list[SubscriptionIn]) -> list[dict[str, Any]]:
        """Subscriptions that exist already (verified long ago): for benchmarks at scale."""
        with self._lock:
            created = [_Subscription.of(r, _rfc3339(self.clock())) for r in requests]
            for subscription in created:
                subscription.status = "enabled"
                self._store(subscription)
            return [s.to_json() for s in created]

    def _verified(self, subscription_id: str, challenge: str, answer: Any) -> None:
        """Twitch's own checks: a 2xx, the exact challenge, text/plain."""
        ok = (
            answer is not None
            and 200 <= answer.status_code < 300
            and answer.text == challenge
            and answer.headers.get("content-type", "").startswith("text/plain")
        )
        with self._lock:
            subscription = self._subscriptions.get(subscription_id)
            if subscription is not None:
                subscription.status = "enabled" if ok else "webhook_callback_verification_failed"

    def subscriptions(
        self, status: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            return [
                s.to_json()
                for s in self._subscriptions.values()
                if (status is None or s.status == status) and (kind is None or s.type == kind)
            ]

    def delete_subscription(self, subscription_id: str) -> bool:
        with self._lock:
            removed = self._subscriptions.pop(subscription_id, None)
            if removed is not None:
                self._by_broadcaster.get(removed.broadcaster_id, set()).discard(subscription_id)
            return removed is not None

    def _store(self, subscription: _Subscription) -> None:
        self._subscriptions[subscription.id] = subscription
        self._by_broadcaster.setdefault(subscription.broadcaster_id, set()).add(subscription.id)

    def revoke(self, subscription_id: str, reason: str = "authorization_revoked") -> None:
        """Twitch ends the subscription and tells the callback (a revocation message)."""
        with self._lock:
            subscription = self._subscriptions[subscription_id]
            subscription.status = reason
            body = {"subscription": subscription.to_json()}
            self.push.verify(_builder(subscription, "revocation", body), lambda _: None)

    def _emit(self, kind: str, channel: FakeChannel) -> None:
        ids = self._by_broadcaster.get(channel.id, set())
        for subscription in [self._subscriptions[i] for i in ids]:
            if (
                subscription.type == kind
                and subscription.broadcaster_id == channel.id
                and subscription.status == "enabled"
            ):
                body = {"subscription": subscription.to_json(), "event": _event_json(kind, channel)}
                self.push.notify(
                    _builder(subscription, "notification", body), f"{kind}:{channel.id}"
                )

    # --- control: failures, tokens, counters ---

    def fail_next(
        self,
        mode: FailMode,
        count: int = 1,
        *,
        target: FailTarget = "helix",
        status: int = 503,
        reset_in: float = 30.0,
        delay: float = 2.0,
    ) -> None:
        """Answer the next ``count`` matching requests with ``mode`` instead of the real answer.

        ``status`` is the 5xx code, ``reset_in`` how far away a 429's Ratelimit-Reset lies, and
        ``delay`` how long a "timeout" request hangs before it gets a 504.
        """
        with self._lock:
            self._failure = _Failure(mode, count, target, status, reset_in, delay)

    def expire_tokens(self) -> int:
        """Invalidate every issued token, as a 58-day expiry or a revocation would."""
        with self._lock:
            expired = len(self._tokens)
            self._tokens.clear()
            return expired

    def stats(self) -> FakeTwitchStats:
        with self._lock:
            return FakeTwitchStats(
                total=sum(self._by_endpoint.values()),
                by_endpoint=dict(self._by_endpoint),
                by_status={str(k): v for k, v in self._by_status.items()},
                stream_ids_requested=self._stream_ids_requested,
                failures_injected=self._failures_injected,
            )

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_counters()

    def _reset_counters(self) -> None:
        self._by_endpoint: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()
        self._stream_ids_requested = 0
        self._failures_injected = 0

    # --- used by the routes ---

    def record(self, endpoint: str, status: int) -> None:
        with self._lock:
            self._by_endpoint[endpoint] += 1
            self._by_status[status] += 1

    def take_failure(self, endpoint: str) -> _Failure | None:
        with self._lock:
            failure = self._failure
            if failure is None or not failure.applies_to(endpoint):
                return None
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failure = None
            self._failures_injected += 1
            return replace(failure)

    def issue_token(self, client_id: str) -> str:
        with self._lock:
            token = secrets.token_hex(15)
            expires_at = self.clock() + timedelta(seconds=self.token_ttl)
            self._tokens[token] = _Token(client_id, expires_at)
            return token

    def token(self, value: str) -> _Token | None:
        """The token if it was issued and has not expired."""
        with self._lock:
            token = self._tokens.get(value)
            if token is None or token.expires_at <= self.clock():
                return None
            return token

    def take_point(self, client_id: str, cost: int = 1) -> _RateAnswer:
        """Spend ``cost`` points of the client's bucket (800 a minute by default, refilling steadily).

        A cost of 0 only reads the bucket, for answers that must carry the headers anyway.
        """
        with self._lock:
            now = self.clock()
            rate = self.rate_limit / self.rate_window
            bucket = self._buckets.setdefault(client_id, _Bucket(float(self.rate_limit), now))
            elapsed = max((now - bucket.updated).total_seconds(), 0.0)
            bucket.points = min(float(self.rate_limit), bucket.points + elapsed * rate)
            bucket.updated = now
            allowed = bucket.points >= cost
            if allowed:
                bucket.points -= cost
            full_at = now.timestamp() + (self.rate_limit - bucket.points) / rate
            return _RateAnswer(allowed, self._rate_headers(math.floor(bucket.points), full_at))

    def throttled_headers(self, reset_in: float) -> dict[str, str]:
        return self._rate_headers(0, self.clock().timestamp() + reset_in)

    def _rate_headers(self, remaining: int, full_at: float) -> dict[str, str]:
        return {
            "Ratelimit-Limit": str(self.rate_limit),
            "Ratelimit-Remaining": str(remaining),
            "Ratelimit-Reset": str(math.ceil(full_at)),
        }

    def live_streams(self, user_ids: list[str], logins: list[str]) -> list[dict[str, Any]]:
        """Helix stream objects of the live channels asked for (all live ones when none)."""
        with self._lock:
            self._stream_ids_requested += len(user_ids) + len(logins)
            if user_ids or logins:
                asked = self._find(user_ids, logins)
            else:
                asked = list(self._channels.values())
            shown = [c for c in asked if c.live and _shown_now(c)]
            shown.sort(key=lambda c: (-c.viewers, c.id))
            return [_stream_json(c) for c in shown]

    def users(self, ids: list[str], logins: list[str]) -> list[dict[str, Any]]:
        with self._lock:
            return [_user_json(c) for c in self._find(ids, logins)]

    def _find(self, ids: list[str], logins: list[str]) -> list[FakeChannel]:
        """Channels named by id or login, each once; lookups by id stay cheap for benchmarks."""
        found = {i: self._channels[i] for i in ids if i in self._channels}
        if logins:
            wanted = {login.lower() for login in logins}
            found |= {c.id: c for c in self._channels.values() if c.login in wanted}
        return list(found.values())


class SubscriptionIn(BaseModel):
    """POST /helix/eventsub/subscriptions, as strict as Twitch about what this fake serves."""

    type: Literal["stream.online", "stream.offline", "channel.update"]
    version: str
    condition: dict[str, str]
    transport: dict[str, str]


@dataclass
class _Subscription:
    id: str
    type: str
    version: str
    broadcaster_id: str
    callback: str
    secret: str
    created_at: str
    status: str = "webhook_callback_verification_pending"

    @classmethod
    def of(cls, request: SubscriptionIn, created_at: str) -> _Subscription:
        return cls(
            str(uuid.uuid4()),
            request.type,
            request.version,
            request.condition["broadcaster_user_id"],
            request.transport["callback"],
            request.transport["secret"],
            created_at,
        )

    def same_as(self, request: SubscriptionIn) -> bool:
        return (self.type, self.broadcaster_id, self.callback) == (
            request.type,
            request.condition.get("broadcaster_user_id"),
            request.transport.get("callback"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "version": self.version,
            "condition": {"broadcaster_user_id": self.broadcaster_id},
            "transport": {"method": "webhook", "callback": self.callback},
            "created_at": self.created_at,
            "cost": 1,
        }


def check_subscription(request: SubscriptionIn) -> None:
    """Twitch's 400s for a subscription request; http callbacks are allowed on loopback only."""
    if EVENTSUB_VERSIONS[request.type] != request.version:
        raise HelixRejection(400, f"unsupported version for {request.type}")
    if not request.condition.get("broadcaster_user_id", "").isdigit():
        raise HelixRejection(400, "condition.broadcaster_user_id is required")
    transport = request.transport
    if transport.get("method") != "webhook":
        raise HelixRejection(400, "transport.method must be webhook for an app token")
    callback = transport.get("callback", "")
    loopback = callback.startswith(("http://127.0.0.1", "http://localhost"))
    if not (callback.startswith("https://") or loopback):
        raise HelixRejection(400, "transport.callback must use https")
    secret = transport.get("secret", "")
    if not (10 <= len(secret) <= 100 and secret.isascii()):
        raise HelixRejection(400, "transport.secret must be between 10 and 100 characters")


def _event_json(kind: str, channel: FakeChannel) -> dict[str, Any]:
    user = {
        "broadcaster_user_id": channel.id,
        "broadcaster_user_login": channel.login,
        "broadcaster_user_name": channel.display_name,
    }
    if kind == "stream.online":
        assert channel.started_at is not None
        return {
            **user,
            "id": channel.stream_id,
            "type": "live",
            "started_at": _rfc3339(channel.started_at),
        }
    if kind == "channel.update":
        game_id = str(zlib.crc32(channel.category.encode()) % 1_000_000) if channel.category else ""
        return {
            **user,
            "title": channel.title,
            "language": channel.language,
            "category_id": game_id,
            "category_name": channel.category,
            "content_classification_labels": [],
        }
    return user


def eventsub_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), message_id.encode() + timestamp.encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _builder(
    subscription: _Subscription, kind: str, payload: dict[str, Any]
) -> Callable[[Signing], Delivery]:
    body = json.dumps(payload).encode()

    def build(signing: Signing) -> Delivery:
        message_id = str(uuid.uuid4())
        timestamp = rfc3339_nanos(signing.timestamp)
        signature = eventsub_signature(subscription.secret, message_id, timestamp, body)
        if signing.corrupt:
            signature = signature[:-4] + ("0000" if not signature.endswith("0000") else "1111")
        headers = {
            "Content-Type": "application/json",
            "Twitch-Eventsub-Message-Id": message_id,
            "Twitch-Eventsub-Message-Retry": "0",
            "Twitch-Eventsub-Message-Type": kind,
            "Twitch-Eventsub-Message-Signature": signature,
            "Twitch-Eventsub-Message-Timestamp": timestamp,
            "Twitch-Eventsub-Subscription-Type": subscription.type,
            "Twitch-Eventsub-Subscription-Version": subscription.version,
        }
        return Delivery(subscription.callback, headers, body)

    return build


def _shown_now(channel: FakeChannel) -> bool:
    """Whether this request sees the channel; a flapping one is seen every other time."""
    if channel.lag_reads > 0:
        channel.lag_reads -= 1
        return False
    if not channel.flapping:
        return True
    channel.flap_seen += 1
    return channel.flap_seen % 2 == 1


def _stream_json(channel: FakeChannel) -> dict[str, Any]:
    assert channel.started_at is not None
    # crc32, not hash(): the same category has the same id in every process.
    game_id = str(zlib.crc32(channel.category.encode()) % 1_000_000) if channel.category else ""
    return {
        "id": channel.stream_id,
        "user_id": channel.id,
        "user_login": channel.login,
        "user_name": channel.display_name,
        "game_id": game_id,
        "game_name": channel.category,
        "type": "live",
        "title": channel.title,
        "tags": list(channel.tags),
        "viewer_count": channel.viewers,
        "started_at": _rfc3339(channel.started_at),
        "language": channel.language,
        "thumbnail_url": (
            f"https://static-cdn.jtvnw.net/previews-ttv/live_user_{channel.login}-{{width}}x{{height}}.jpg"
        ),
        "tag_ids": [],
        "is_mature": False,
    }


def _user_json(channel: FakeChannel) -> dict[str, Any]:
    return {
        "id": channel.id,
        "login": channel.login,
        "display_name": channel.display_name,
        "type": "",
        "broadcaster_type": "",
        "description": "",
        "profile_image_url": "",
        "offline_image_url": "",
        "view_count": 0,
        "created_at": CREATED_AT,
    }


# --- HTTP: Twitch's own shapes ---


def twitch_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Twitch's error body: {"error": <HTTP reason>, "status": <code>, "message": <text>}."""
    reason = {
        400: "Bad Request",
        401: "Unauthorized",
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, "Error")
    body = {"error": reason, "status": status, "message": message}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


class HelixRejection(Exception):
    """A request Helix refuses; carries the status and message of Twitch's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _bearer(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``; Helix takes no other scheme."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _first(request: Request) -> int:
    raw = request.query_params.get("first", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_EACH_PARAMETER:
        raise HelixRejection(400, 'The parameter "first" must be between 1 and 100')
    return int(raw)


def _offset(request: Request) -> int:
    cursor = request.query_params.get("after")
    if cursor is None:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:"))
    except ValueError as error:
        raise HelixRejection(400, "invalid cursor") from error


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    first, offset = _first(request), _offset(request)
    end = offset + first
    pagination = {"cursor": _cursor(end)} if end < len(items) else {}
    return {"data": items[offset:end], "pagination": pagination}


def _repeated(request: Request, *names: str) -> list[list[str]]:
    values = [request.query_params.getlist(name) for name in names]
    if any(len(v) > MAX_EACH_PARAMETER for v in values):
        raise HelixRejection(400, "you may only send 100 of each parameter")
    return values


class _FakeTwitchApp:
    """The routes. Each one counts itself, may play an injected failure, then answers."""

    def __init__(self, state: FakeTwitchState) -> None:
        self.state = state

    async def token(self, request: Request) -> Response:
        return await self._answer("token", request, self._token)

    async def validate(self, request: Request) -> Response:
        return await self._answer("validate", request, self._validate)

    async def streams(self, request: Request) -> Response:
        return await self._answer("streams", request, self._helix(self._streams))

    async def users(self, request: Request) -> Response:
        return await self._answer("users", request, self._helix(self._users))

    async def eventsub(self, request: Request) -> Response:
        return await self._answer("eventsub", request, self._eventsub)

    async def _eventsub(self, request: Request) -> Response:
        client_id = request.headers.get("Client-Id", "")
        rejection = self._auth_problem(request, client_id)
        if rejection is not None:
            return twitch_error(401, rejection)
        try:
            if request.method == "POST":
                return await self._subscribe(request)
            if request.method == "DELETE":
                return self._unsubscribe(request)
            return self._list_subscriptions(request)
        except HelixRejection as error:
            return twitch_error(error.status, error.message)

    async def _subscribe(self, request: Request) -> Response:
        try:
            wanted = SubscriptionIn.model_validate_json(await request.body())
        except ValidationError as error:
            raise HelixRejection(400, "invalid subscription request") from error
        check_subscription(wanted)
        created = self.state.create_subscription(wanted)
        return JSONResponse(self._totals([created]), 202)

    def _unsubscribe(self, request: Request) -> Response:
        subscription_id = request.query_params.get("id")
        if not subscription_id:
            raise HelixRejection(400, 'Missing required parameter "id"')
        if not self.state.delete_subscription(subscription_id):
            raise HelixRejection(404, "subscription not found")
        return Response(status_code=204)

    def _list_subscriptions(self, request: Request) -> Response:
        params = request.query_params
        found = self.state.subscriptions(params.get("status"), params.get("type"))
        page = _page(request, found)
        return JSONResponse(
            {**self._totals(page["data"]), "total": len(found), "pagination": page["pagination"]}
        )

    def _totals(self, data: list[dict[str, Any]]) -> dict[str, Any]:
        total = len(self.state.subscriptions())
        return {"data": data, "total": total, "total_cost": total, "max_total_cost": MAX_TOTAL_COST}

    async def _answer(
        self, endpoint: str, request: Request, handler: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        failure = self.state.take_failure(endpoint)
        if failure is not None:
            response = await self._failure(failure, self._failure_headers(endpoint, request))
        else:
            response = await handler(request)
        self.state.record(endpoint, response.status_code)
        return response

    def _failure_headers(self, endpoint: str, request: Request) -> dict[str, str]:
        if endpoint not in HELIX_TARGETS["helix"]:
            return {}
        return self.state.take_point(request.headers.get("Client-Id", ""), cost=0).headers

    async def _failure(self, failure: _Failure, headers: dict[str, str]) -> Response:
        if failure.mode == "429":
            # Remaining 0 and a reset ``reset_in`` seconds away, as an emptied bucket reports.
            throttled = self.state.throttled_headers(failure.reset_in) if headers else {}
            return twitch_error(429, "Too Many Requests", throttled)
        if failure.mode == "401":
            return twitch_error(401, "Invalid OAuth token", headers)
        if failure.mode == "garbage":
            # A cut-off body with a JSON content type, as a proxy dropping the connection gives.
            return Response('{"data":[{"id":"4095', 200, headers, "application/json")
        if failure.mode == "timeout":
            await asyncio.sleep(failure.delay)
            return twitch_error(504, "", headers)
        return twitch_error(failure.status, "", headers)

    # --- id host ---

    async def _token(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl((await request.body()).decode()))
        if params.get("grant_type") != "client_credentials":
            return Response(status_code=400)
        client_id = params.get("client_id", "")
        secret = self.state.clients.get(client_id)
        if secret is None or secret != params.get("client_secret"):
            return twitch_error(400, "Client ID/Secret invalid")
        body = {
            "access_token": self.state.issue_token(client_id),
            "refresh_token": "",
            "expires_in": self.state.token_ttl,
            "scope": [],
            "token_type": "bearer",
        }
        return JSONResponse(body)

    async def _validate(self, request: Request) -> Response:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self.state.token(value.strip()) if scheme.lower() in {"oauth", "bearer"} else None
        if token is None:
            # The id host's own error shape, without the "error" field Helix adds.
            return JSONResponse({"status": 401, "message": "invalid access token"}, 401)
        expires_in = int((token.expires_at - self.state.clock()).total_seconds())
        return JSONResponse({"client_id": token.client_id, "scopes": [], "expires_in": expires_in})

    # --- Helix ---

    def _helix(
        self, answer: Callable[[Request], dict[str, Any]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a Helix answer with auth, the rate bucket and Twitch's 400 for bad parameters."""

        async def guarded(request: Request) -> Response:
            client_id = request.headers.get("Client-Id", "")
            rejection = self._auth_problem(request, client_id)
            if rejection is not None:
                return twitch_error(401, rejection, self.state.take_point(client_id, 0).headers)
            rate = self.state.take_point(client_id)
            if not rate.allowed:
                return twitch_error(429, "Too Many Requests", rate.headers)
            try:
                return JSONResponse(answer(request), headers=rate.headers)
            except HelixRejection as error:
                return twitch_error(error.status, error.message, rate.headers)

        return guarded

    def _auth_problem(self, request: Request, client_id: str) -> str | None:
        value = _bearer(request)
        if value is None:
            return "OAuth token is missing"
        if not client_id:
            return "Client ID is missing"
        token = self.state.token(value)
        if token is None:
            return "Invalid OAuth token"
        if token.client_id != client_id:
            return "Client ID and OAuth token do not match"
        return None

    def _streams(self, request: Request) -> dict[str, Any]:
        # game_id and language are checked and accepted but do not filter: nothing here uses them.
        user_ids, logins, _games = _repeated(request, "user_id", "user_login", "game_id")
        if request.query_params.get("type", "all") not in {"all", "live"}:
            raise HelixRejection(400, 'The parameter "type" must be one of: all, live')
        # Refuse bad paging before looking, so a rejected request does not move a flapping channel.
        _first(request)
        _offset(request)
        return _page(request, self.state.live_streams(user_ids, logins))

    def _users(self, request: Request) -> dict[str, Any]:
        ids, logins = _repeated(request, "id", "login")
        if len(ids) + len(logins) > MAX_EACH_PARAMETER:
            raise HelixRejection(400, "you may only send 100 ids and logins together")
        if not ids and not logins:
            # An app token has no user of its own to fall back on.
            raise HelixRejection(400, "Must provide an ID, Login or OAuth Token")
        return {"data": self.state.users(ids, logins)}


# --- HTTP control interface (/_control/*), for a simulator in another process ---


class ChannelIn(BaseModel):
    login: str = Field(min_length=1, max_length=25)
    id: str | None = Field(default=None, pattern=r"^[0-9]+$")
    display_name: str | None = None
    live: bool = False
    title: str = ""
    category: str = ""
    viewers: int = Field(default=0, ge=0)
    flapping: bool = False


class ChannelPatch(BaseModel):
    live: bool | None = None
    title: str | None = None
    category: str | None = None
    viewers: int | None = Field(default=None, ge=0)
    flapping: bool | None = None


class FailIn(BaseModel):
    mode: FailMode
    count: int = Field(default=1, ge=1)
    target: FailTarget = "helix"
    status: int = Field(default=503, ge=500, le=599)
    reset_in: float = Field(default=30.0, ge=0)
    delay: float = Field(default=2.0, ge=0, le=60)


class RevokeIn(BaseModel):
    id: str
    reason: Literal[
        "authorization_revoked", "user_removed", "notification_failures_exceeded", "version_removed"
    ] = "authorization_revoked"


_CHANNELS_IN: TypeAdapter[ChannelIn | list[ChannelIn]] = TypeAdapter(ChannelIn | list[ChannelIn])


class _ControlApp:
    def __init__(self, state: FakeTwitchState) -> None:
        self.state = state

    async def list_channels(self, request: Request) -> Response:
        return JSONResponse({"data": [c.to_json() for c in self.state.channels()]})

    async def add_channels(self, request: Request) -> Response:
        parsed = _CHANNELS_IN.validate_json(await request.body())
        many = parsed if isinstance(parsed, list) else [parsed]
        try:
            added = [self._add(channel) for channel in many]
        except ValueError as error:
            return JSONResponse({"detail": str(error)}, 409)
        return JSONResponse({"data": [c.to_json() for c in added]}, 201)

    def _add(self, channel: ChannelIn) -> FakeChannel:
        return self.state.add_channel(
            channel.login,
            channel_id=channel.id,
            display_name=channel.display_name,
            live=channel.live,
            title=channel.title,
            category=channel.category,
            viewers=channel.viewers,
            flapping=channel.flapping,
        )

    async def get_channel(self, request: Request) -> Response:
        try:
            return JSONResponse(self.state.channel(request.path_params["id"]).to_json())
        except KeyError:
            return JSONResponse({"detail": "no such channel"}, 404)

    async def update_channel(self, request: Request) -> Response:
        patch = ChannelPatch.model_validate_json(await request.body())
        try:
            channel = self.state.update_channel(request.path_params["id"], **patch.model_dump())
        except KeyError:
            return JSONResponse({"detail": "no such channel"}, 404)
        return JSONResponse(channel.to_json())

    async def fail(self, request: Request) -> Response:
        failure = FailIn.model_validate_json(await request.body())
        self.state.fail_next(**failure.model_dump())
        return JSONResponse(failure.model_dump())

    async def expire_tokens(self, request: Request) -> Response:
        return JSONResponse({"expired": self.state.expire_tokens()})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(asdict(self.state.stats()))

    async def reset_stats(self, request: Request) -> Response:
        self.state.reset_stats()
        return JSONResponse(asdict(self.state.stats()))

    async def push_switch(self, request: Request) -> Response:
        switch = SwitchIn.model_validate_json(await request.body())
        self.state.push.switch(switch.mode, switch.count, switch.seconds)
        return JSONResponse(switch.model_dump())

    async def push_subscriptions(self, request: Request) -> Response:
        return JSONResponse({"data": self.state.subscriptions()})

    async def push_revoke(self, request: Request) -> Response:
        revoke = RevokeIn.model_validate_json(await request.body())
        try:
            self.state.revoke(revoke.id, revoke.reason)
        except KeyError:
            return JSONResponse({"detail": "no such subscription"}, 404)
        return JSONResponse(revoke.model_dump())

    async def push_stats(self, request: Request) -> Response:
        return JSONResponse({"outcomes": dict(self.state.push.outcomes)})


async def _invalid_control_body(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    return JSONResponse({"detail": exc.errors(include_url=False)}, 422)


def create_app(state: FakeTwitchState) -> Starlette:
    twitch = _FakeTwitchApp(state)
    control = _ControlApp(state)
    routes = [
        Route("/oauth2/token", twitch.token, methods=["POST"]),
        Route("/oauth2/validate", twitch.validate, methods=["GET"]),
        Route("/helix/streams", twitch.streams, methods=["GET"]),
        Route("/helix/users", twitch.users, methods=["GET"]),
        Route("/helix/eventsub/subscriptions", twitch.eventsub, methods=["GET", "POST", "DELETE"]),
        Route("/_control/push", control.push_switch, methods=["POST"]),
        Route("/_control/push/subscriptions", control.push_subscriptions, methods=["GET"]),
        Route("/_control/push/revoke", control.push_revoke, methods=["POST"]),
        Route("/_control/push/stats", control.push_stats, methods=["GET"]),
        Route("/_control/channels", control.list_channels, methods=["GET"]),
        Route("/_control/channels", control.add_channels, methods=["POST"]),
        Route("/_control/channels/{id}", control.get_channel, methods=["GET"]),
        Route("/_control/channels/{id}", control.update_channel, methods=["POST"]),
        Route("/_control/fail", control.fail, methods=["POST"]),
        Route("/_control/expire-tokens", control.expire_tokens, methods=["POST"]),
        Route("/_control/stats", control.stats, methods=["GET"]),
        Route("/_control/stats/reset", control.reset_stats, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={ValidationError: _invalid_control_body})
