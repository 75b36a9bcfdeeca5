"""Fake Spotify (PLATFORM_APIS.md §5 and §6): strict, stateful, driven from Python or over HTTP.

One app serves both hosts: the accounts service (``GET /authorize``, ``POST /api/token``) and the
Web API (``GET /v1/me/player/currently-playing``, ``GET /v1/me``); point both
``spotify_accounts_base`` and ``spotify_api_base`` at it. Users have a queue of tracks that plays
on the fake's clock (a track ends, the next starts), and can be paused, skipped, stopped (204),
put into a private session (204), an ad or a podcast episode. Tokens expire on that clock;
refresh tokens can be revoked (``invalid_grant``); a refresh answer omits ``refresh_token`` by
default, as Spotify often does. Rate limits: planned 429s with ``Retry-After`` (``fail_next``),
the ``QUOTA_EXCEEDED`` 429, and an optional app-wide rolling 30 s limit.

It builds on the shared half of ``kick.py`` (failures, statistics, latency, the clock); the
control interface is that one (without the channel routes) plus:

| method | path | body / answer |
|---|---|---|
| GET, POST | /_control/users | POST ``{"user_id"?, "display_name"?, "tracks"?, "playing"?}`` → 201 user |
| GET, PATCH | /_control/users/{id} | PATCH ``{"action": "play\\|pause\\|next\\|stop\\|ad\\|episode\\|private\\|public", "position_ms"?}`` |
| POST | /_control/users/{id}/code | ``{"redirect_uri", "scope"?}`` → ``{"code"}`` (consent without a browser) |
| POST | /_control/tokens/expire | ``{"user_id"?}``: access tokens stop working |
| POST | /_control/tokens/revoke | ``{"user_id"?}``: refresh tokens answer ``invalid_grant`` |
| PUT | /_control/spotify | ``{"access_seconds"?, "refresh_mode"?, "quota_exceeded_next"?, "rate_limit_per_30s"?, "consent_user"?, "deny_consent"?}`` |
| GET | /_control/requests | requests per user and endpoint, peak concurrency per user |
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
import zlib
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from lumio.dev.fakes.state import (
    EpochClock,
    FailureMode,
    FakePlatformState,
    control_routes,
    garbage_response,
    parse_json,
    platform_route,
)

AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/api/token"  # noqa: S105 (a path)
CURRENTLY_PLAYING_PATH = "/v1/me/player/currently-playing"
PROFILE_PATH = "/v1/me"
CURRENTLY_PLAYING = f"GET {CURRENTLY_PLAYING_PATH}"
TOKEN = f"POST {TOKEN_PATH}"
READ_SCOPES = frozenset({"user-read-currently-playing", "user-read-playback-state"})
FORM_TYPE = "application/x-www-form-urlencoded"
RATE_WINDOW_SECONDS = 30.0
RefreshMode = Literal["omit", "same", "rotate"]


@dataclass(frozen=True)
class FakeTrack:
    track_id: str
    name: str
    artists: tuple[str, ...]
    album: str
    duration_ms: int
    art_url: str = "https://i.scdn.co/image/ab67616d0000b273fake"


DEMO_TRACKS = (
    FakeTrack("4uLU6hMCjMI75M1A2tKUQC", "Never Gonna Give You Up", ("Rick Astley",),
              "Whenever You Need Somebody", 213_573),
    FakeTrack("7GhIk7Il098yCjg4BQjzvb", "Never Gonna Stop", ("Lumio Ensemble",),
              "Background Music for Streams", 187_000),
    FakeTrack("2takcwOaAZWiXQijPHIx7B", "Time to Say Goodbye", ("Demo Duo", "Guest"),
              "Ending Screens", 245_000),
)  # fmt: skip
DEMO_EPISODE = FakeTrack(
    "512ojhOuo1ktJprKbVcKyQ",
    "Episode 42: Streaming",
    ("Lumio Podcasts",),
    "The Lumio Show",
    3_600_000,
)


@dataclass
class FakeUser:
    user_id: str
    display_name: str
    queue: list[FakeTrack]
    index: int = 0
    # Position at ``anchor`` (epoch seconds); while playing, progress runs on from there.
    position_ms: float = 0.0
    anchor: float = 0.0
    playing: bool = True
    # No active device (or stopped): 204.
    active: bool = True
    private_session: bool = False
    ad: bool = False
    episode: bool = False


@dataclass
class _Code:
    user_id: str
    redirect_uri: str
    scope: str
    expires_at: float


@dataclass
class _Access:
    user_id: str
    scope: str
    expires_at: float


@dataclass
class _Refresh:
    user_id: str
    scope: str
    revoked: bool = False


@dataclass(frozen=True)
class FakeRequest:
    """One Web API or token request, for tests that count who was asked when."""

    at: float
    endpoint: str
    user_id: str | None
    status: int
    agent: str


@dataclass
class _Window:
    """The optional app-wide rolling window: request times of the last 30 s."""

    limit: int = 0
    times: deque[float] = field(default_factory=deque)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    display_name: str | None = None
    playing: bool = True
    tracks: list[dict[str, Any]] | None = None


class PlaybackAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["play", "pause", "next", "stop", "ad", "episode", "private", "public"]
    position_ms: int | None = Field(default=None, ge=0)


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    redirect_uri: str
    scope: str = " ".join(sorted(READ_SCOPES))


class UserSelector(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = None


class SpotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    access_seconds: int | None = Field(default=None, ge=1)
    refresh_mode: RefreshMode | None = None
    quota_exceeded_next: int | None = Field(default=None, ge=0)
    rate_limit_per_30s: int | None = Field(default=None, ge=0)
    consent_user: str | None = None
    deny_consent: bool | None = None


class FakeSpotifyState(FakePlatformState):
    """Spotify's users, their players, the app's credentials and every token issued."""

    def __init__(
        self,
        client_id: str = "lumio-dev-spotify",
        client_secret: str = "lumio-dev-spotify-secret",  # noqa: S107 (a fake's own credential)
        *,
        clock: EpochClock = time.time,
    ) -> None:
        # Before the base __init__, whose reset() clears them.
        self._users: dict[str, FakeUser] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._log: deque[FakeRequest] = deque(maxlen=200_000)
        self._user_in_flight: Counter[str] = Counter()
        self._user_peak: Counter[str] = Counter()
        self._window = _Window()
        super().__init__(clock)
        self.client_id = client_id
        self.client_secret = client_secret

    def reset(self) -> None:
        with self._lock:
            super().reset()
            for table in (self._users, self._codes, self._access, self._refresh):
                table.clear()
            self._log.clear()
            self._user_in_flight.clear()
            self._user_peak.clear()
            self._window = _Window()
            self.access_seconds = 3600
            self.refresh_mode: RefreshMode = "omit"
            self.quota_exceeded_next = 0
            self.consent_user: str | None = None
            self.deny_consent = False

    # users and their players

    def add_user(
        self,
        user_id: str | None = None,
        *,
        display_name: str | None = None,
        tracks: tuple[FakeTrack, ...] | list[FakeTrack] = DEMO_TRACKS,
        playing: bool = True,
    ) -> FakeUser:
        with self._lock:
            uid = user_id or f"user{len(self._users) + 1}"
            if uid in self._users:
                raise ValueError(f"user {uid} exists")
            user = FakeUser(uid, display_name or uid.title(), list(tracks), anchor=self.clock())
            user.playing = playing
            self._users[uid] = user
            return replace(user)

    def user(self, user_id: str) -> FakeUser:
        """The user's player as it is now. Raises KeyError."""
        with self._lock:
            user = self._users[user_id]
            self._settle(user)
            return replace(user, queue=list(user.queue))

    def users(self) -> list[FakeUser]:
        with self._lock:
            return [self.user(uid) for uid in self._users]

    def act(self, user_id: str, action: str, position_ms: int | None = None) -> FakeUser:
        """play, pause, next, stop (204), ad, episode, private (204), public. Raises KeyError."""
        with self._lock:
            user = self._users[user_id]
            self._settle(user)
            if action == "play":
                user.playing, user.active, user.ad = True, True, False
            elif action == "pause":
                user.playing = False
            elif action == "next":
                user.index, user.position_ms = (user.index + 1) % max(1, len(user.queue)), 0.0
                user.ad = user.episode = False
            elif action == "stop":
                user.active, user.playing = False, False
            elif action in ("ad", "episode"):
                user.ad, user.episode = action == "ad", action == "episode"
                user.playing, user.active, user.position_ms = True, True, 0.0
            else:
                user.private_session = action == "private"
            if position_ms is not None:
                user.position_ms = float(position_ms)
            return self.user(user_id)

    def _settle(self, user: FakeUser) -> None:
        """Run the player on to now: a track that ends gives way to the next in the queue."""
        now = self.clock()
        if user.playing and user.active and not user.ad and user.queue:
            user.position_ms += (now - user.anchor) * 1000
            while user.position_ms >= self._playing(user).duration_ms:
                user.position_ms -= self._playing(user).duration_ms
                if user.episode:
                    user.episode = False
                else:
                    user.index = (user.index + 1) % len(user.queue)
        user.anchor = now

    def _playing(self, user: FakeUser) -> FakeTrack:
        return DEMO_EPISODE if user.episode else user.queue[user.index]

    # tokens

    def issue_code(self, user_id: str, redirect_uri: str, scope: str) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            if user_id not in self._users:
                raise KeyError(user_id)
            self._codes[code] = _Code(user_id, redirect_uri, scope, self.clock() + 600)
        return code

    def _grant(self, user_id: str, scope: str, refresh: str | None) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self._access[access] = _Access(user_id, scope, self.clock() + self.access_seconds)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": self.access_seconds,
        }
        if refresh is not None:
            answer["refresh_token"] = refresh
        return answer

    def redeem_code(self, code: str, redirect_uri: str) -> dict[str, Any] | str:
        """Token answer, or the invalid_grant description."""
        with self._lock:
            found = self._codes.pop(code, None)
            if found is None or found.expires_at < self.clock():
                return "Invalid authorization code"
            if found.redirect_uri != redirect_uri:
                return "Invalid redirect URI"
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = _Refresh(found.user_id, found.scope)
            return self._grant(found.user_id, found.scope, refresh)

    def refresh(self, token: str) -> dict[str, Any] | str:
        with self._lock:
            found = self._refresh.get(token)
            if found is None:
                return "Invalid refresh token"
            if found.revoked:
                return "Refresh token revoked"
            new = None
            if self.refresh_mode == "same":
                new = token
            elif self.refresh_mode == "rotate":
                new = secrets.token_urlsafe(32)
                self._refresh[new] = _Refresh(found.user_id, found.scope)
                del self._refresh[token]
            return self._grant(found.user_id, found.scope, new)

    def bearer(self, token: str) -> _Access | str:
        """The access token's grant, or the 401 message."""
        with self._lock:
            found = self._access.get(token)
            if found is None:
                return "Invalid access token"
            if found.expires_at <= self.clock():
                return "The access token expired"
            return found

    def grant_tokens(
        self,
        user_id: str,
        access_token: str,
        refresh_token: str,
        scope: str = "user-read-currently-playing",
    ) -> None:
        """Tokens issued out of band: benchmarks and fixtures that seed many links at once."""
        with self._lock:
            if user_id not in self._users:
                raise KeyError(user_id)
            expires_at = self.clock() + self.access_seconds
            self._access[access_token] = _Access(user_id, scope, expires_at)
            self._refresh[refresh_token] = _Refresh(user_id, scope)

    def expire_tokens(self, user_id: str | None = None) -> None:
        """Access tokens (of one user, or all) stop working, as if their hour had passed."""
        with self._lock:
            for access in self._access.values():
                if user_id in (None, access.user_id):
                    access.expires_at = min(access.expires_at, self.clock())

    def revoke(self, user_id: str | None = None) -> None:
        """The user removed the app: refresh tokens answer invalid_grant, access tokens 401."""
        with self._lock:
            for refresh in self._refresh.values():
                if user_id in (None, refresh.user_id):
                    refresh.revoked = True
            self._access = {
                k: v for k, v in self._access.items() if user_id not in (None, v.user_id)
            }

    def refresh_tokens(self, user_id: str) -> list[str]:
        with self._lock:
            return [k for k, v in self._refresh.items() if v.user_id == user_id and not v.revoked]

    # limits

    def take_quota_failure(self) -> bool:
        with self._lock:
            if self.quota_exceeded_next <= 0:
                return False
            self.quota_exceeded_next -= 1
            return True

    def take_window(self) -> float | None:
        """None: under the app-wide limit (and counted); else the seconds until a slot frees."""
        with self._lock:
            window = self._window
            if window.limit <= 0:
                return None
            now = self.clock()
            while window.times and window.times[0] <= now - RATE_WINDOW_SECONDS:
                window.times.popleft()
            if len(window.times) >= window.limit:
                return window.times[0] + RATE_WINDOW_SECONDS - now
            window.times.append(now)
            return None

    def configure(self, patch: SpotifySettings) -> None:
        with self._lock:
            for name in ("access_seconds", "refresh_mode", "quota_exceeded_next"):
                value = getattr(patch, name)
                if value is not None:
                    setattr(self, name, value)
            if patch.rate_limit_per_30s is not None:
                self._window = _Window(patch.rate_limit_per_30s)
            if patch.consent_user is not None:
                self.consent_user = patch.consent_user
            if patch.deny_consent is not None:
                self.deny_consent = patch.deny_consent

    # requests

    def token_user(self, token: str) -> str | None:
        """Whose access token this is, expired or not."""
        with self._lock:
            found = self._access.get(token)
            return None if found is None else found.user_id

    @contextmanager
    def serving(self, user_id: str | None) -> Iterator[None]:
        if user_id is None:
            yield
            return
        with self._lock:
            self._user_in_flight[user_id] += 1
            peak = max(self._user_peak[user_id], self._user_in_flight[user_id])
            self._user_peak[user_id] = peak
        try:
            yield
        finally:
            with self._lock:
                self._user_in_flight[user_id] -= 1

    def record(self, endpoint: str, user_id: str | None, status: int, agent: str) -> None:
        with self._lock:
            self._log.append(FakeRequest(self.clock(), endpoint, user_id, status, agent))

    def log(self, endpoint: str | None = CURRENTLY_PLAYING) -> list[FakeRequest]:
        with self._lock:
            return [r for r in self._log if endpoint in (None, r.endpoint)]

    def peak_per_user(self) -> dict[str, int]:
        with self._lock:
            return dict(self._user_peak)

    def reset_stats(self) -> None:
        with self._lock:
            super().reset_stats()
            self._log.clear()
            self._user_peak.clear()


# --- rendering ----------------------------------------------------------------------------------


def spotify_error(
    status: int, message: str, reason: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"status": status, "message": message}
    if reason is not None:
        error["reason"] = reason
    return _json({"error": error}, status, headers)


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _token_error(error: str, description: str, status: int = 400) -> Response:
    return _json({"error": error, "error_description": description}, status)


def _image(url: str) -> list[dict[str, Any]]:
    return [
        {"url": url, "width": 640, "height": 640},
        {"url": url + "-300", "width": 300, "height": 300},
    ]


def _urls(kind: str, item_id: str) -> dict[str, Any]:
    return {
        "uri": f"spotify:{kind}:{item_id}",
        "href": f"https://api.spotify.com/v1/{kind}s/{item_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{item_id}"},
    }


def track_json(track: FakeTrack) -> dict[str, Any]:
    artists = [
        {"id": f"artist{n}", "name": name, "type": "artist", **_urls("artist", f"artist{n}")}
        for n, name in enumerate(track.artists)
    ]
    album_id = f"album{zlib.crc32(track.album.encode()):08x}"
    return {
        "type": "track",
        "id": track.track_id,
        "name": track.name,
        "duration_ms": track.duration_ms,
        "explicit": False,
        "is_local": False,
        "popularity": 50,
        "track_number": 1,
        "disc_number": 1,
        "artists": artists,
        "album": {
            "id": album_id,
            "name": track.album,
            "album_type": "album",
            "release_date": "1987-11-12",
            "images": _image(track.art_url),
            "artists": artists[:1],
            **_urls("album", album_id),
        },
        **_urls("track", track.track_id),
    }


def episode_json(episode: FakeTrack) -> dict[str, Any]:
    return {
        "type": "episode",
        "id": episode.track_id,
        "name": episode.name,
        "duration_ms": episode.duration_ms,
        "explicit": False,
        "images": _image(episode.art_url),
        "release_date": "2026-11-01",
        "show": {
            "id": "show1",
            "name": episode.album,
            "publisher": episode.artists[0],
            "images": _image(episode.art_url),
            **_urls("show", "show1"),
        },
        **_urls("episode", episode.track_id),
    }


def _context() -> dict[str, Any]:
    return {"type": "playlist", **_urls("playlist", "37i9dQZF1DXcBWIGoYBM5M")}


def currently_playing_json(
    state: FakeSpotifyState, user: FakeUser, episodes: bool
) -> dict[str, Any]:
    """The CurrentlyPlaying object of a user whose device is active (PLATFORM_APIS.md §5.1)."""
    item: dict[str, Any] | None
    if user.ad:
        kind, item, progress = "ad", None, round(user.position_ms)
    elif user.episode:
        # Without additional_types=episode an episode comes as type "episode" with item null.
        kind, progress = "episode", round(user.position_ms)
        item = episode_json(DEMO_EPISODE) if episodes else None
    else:
        kind, item, progress = "track", track_json(user.queue[user.index]), round(user.position_ms)
    return {
        "timestamp": int(state.clock() * 1000),
        "context": None if user.ad else _context(),
        "progress_ms": progress,
        "item": item,
        "currently_playing_type": kind,
        "is_playing": user.playing,
        "actions": {"disallows": {"resuming": user.playing}},
    }


def _render_failure(state: FakeSpotifyState) -> Any:
    def render(mode: FailureMode) -> Response:
        if mode is FailureMode.RATE_LIMITED:
            return spotify_error(
                429, "API rate limit exceeded", headers={"Retry-After": str(state.retry_after)}
            )
        if mode is FailureMode.UNAUTHORIZED:
            return spotify_error(401, "The access token expired")
        if mode is FailureMode.GARBAGE:
            return garbage_response()
        if mode in (FailureMode.BLOCKED, FailureMode.BLOCKED_HTML):
            return spotify_error(403, "Forbidden")
        return spotify_error(500, "Server error.")

    return render


def _client_of(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    """(client_id, secret) from Basic auth, or from the body as Spotify also accepts."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return client_id, secret
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


async def _form(request: Request) -> dict[str, str] | None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return None
    try:
        parsed = parse_qs((await request.body()).decode(), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}


class _FakeSpotifyApp:
    def __init__(self, state: FakeSpotifyState) -> None:
        self.state = state

    async def authorize(self, request: Request) -> Response:
        """Spotify's consent page, consenting at once as ``consent_user`` (or the first user)."""
        state, q = self.state, request.query_params
        if q.get("client_id") != state.client_id:
            return Response("INVALID_CLIENT: Invalid client", 400, media_type="text/html")
        redirect_uri = q.get("redirect_uri", "")
        if q.get("response_type") != "code" or not redirect_uri.startswith(("http://", "https://")):
            return Response("INVALID_CLIENT: Invalid redirect URI", 400, media_type="text/html")
        back: dict[str, str] = {"state": q.get("state", "")} if "state" in q else {}
        users = state.users()
        user = state.consent_user or (users[0].user_id if users else None)
        if state.deny_consent or user is None:
            back = {"error": "access_denied", **back}
        else:
            back = {"code": state.issue_code(user, redirect_uri, q.get("scope", "")), **back}
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(back)}", status_code=302)

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        if form is None:
            return _token_error("invalid_request", "Unsupported content type")
        client = _client_of(request, form)
        if client != (self.state.client_id, self.state.client_secret):
            return _token_error("invalid_client", "Invalid client")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            answer = self.state.redeem_code(form.get("code", ""), form.get("redirect_uri", ""))
        elif grant == "refresh_token":
            answer = self.state.refresh(form.get("refresh_token", ""))
        else:
            return _token_error("unsupported_grant_type", "grant_type parameter is missing")
        if isinstance(answer, str):
            return _token_error("invalid_grant", answer)
        return _json(answer)

    def _bearer(self, request: Request, scopes: frozenset[str]) -> str | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return spotify_error(401, "No token provided")
        grant = self.state.bearer(token)
        if isinstance(grant, str):
            return spotify_error(401, grant)
        if scopes and not scopes & set(grant.scope.split()):
            return spotify_error(403, "Insufficient client scope")
        return grant.user_id

    async def currently_playing(self, request: Request) -> Response:
        who = self._bearer(request, READ_SCOPES)
        if isinstance(who, Response):
            return who
        return await self._currently_playing(request, who)

    async def _currently_playing(self, request: Request, user_id: str) -> Response:
        if self.state.take_quota_failure():
            headers = {"Retry-After": str(self.state.retry_after)}
            return spotify_error(429, "Too many requests", "QUOTA_EXCEEDED", headers)
        wait = self.state.take_window()
        if wait is not None:
            return spotify_error(
                429, "API rate limit exceeded", headers={"Retry-After": str(max(1, round(wait)))}
            )
        types = set(request.query_params.get("additional_types", "").split(","))
        user = self.state.user(user_id)
        if not user.active or user.private_session or not user.queue:
            return Response(status_code=204)
        return _json(currently_playing_json(self.state, user, "episode" in types))

    async def profile(self, request: Request) -> Response:
        who = self._bearer(request, frozenset())
        if isinstance(who, Response):
            return who
        user = self.state.user(who)
        return _json(
            {
                "id": user.user_id,
                "display_name": user.display_name,
                "type": "user",
                "images": [],
                "followers": {"href": None, "total": 0},
                **_urls("user", user.user_id),
            }
        )


def _recorded(state: FakeSpotifyState, route: Route, endpoint: str) -> Route:
    """``route`` with every answer logged (planned failures included) and, per user, the
    requests in flight at once counted."""
    inner = route.endpoint

    async def serve(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user_id = state.token_user(token) if scheme.lower() == "bearer" else None
        with state.serving(user_id):
            answer: Response = await inner(request)
        state.record(endpoint, user_id, answer.status_code, request.headers.get("user-agent", ""))
        return answer

    return Route(route.path, serve, methods=sorted(route.methods or ()))


def create_app(state: FakeSpotifyState) -> Starlette:
    app = _FakeSpotifyApp(state)
    render = _render_failure(state)
    token = platform_route(state, "POST", TOKEN_PATH, app.token, render, fails_by_default=False)
    playing = platform_route(state, "GET", CURRENTLY_PLAYING_PATH, app.currently_playing, render)
    routes = [
        Route(AUTHORIZE_PATH, app.authorize, methods=["GET"]),
        _recorded(state, token, TOKEN),
        _recorded(state, playing, CURRENTLY_PLAYING),
        platform_route(state, "GET", PROFILE_PATH, app.profile, render, fails_by_default=False),
        *(r for r in control_routes(state) if not r.path.startswith("/_control/channels")),
        *_spotify_control_routes(state),
    ]
    return Starlette(routes=routes)


def _user_json(user: FakeUser) -> dict[str, Any]:
    data = asdict(user)
    data["queue"] = [asdict(t) for t in user.queue]
    return data


def _track_of(data: dict[str, Any], n: int) -> FakeTrack:
    return FakeTrack(
        track_id=str(data.get("track_id", f"faketrack{n:014d}")),
        name=str(data["name"]),
        artists=tuple(data.get("artists", ("Fake Artist",))),
        album=str(data.get("album", "Fake Album")),
        duration_ms=int(data.get("duration_ms", 180_000)),
    )


def _spotify_control_routes(state: FakeSpotifyState) -> list[Route]:
    async def users(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([_user_json(u) for u in state.users()])
        new = await parse_json(NewUser, request)
        if isinstance(new, JSONResponse):
            return new
        tracks = [_track_of(t, n) for n, t in enumerate(new.tracks)] if new.tracks else DEMO_TRACKS
        try:
            user = state.add_user(
                new.user_id, display_name=new.display_name, tracks=tracks, playing=new.playing
            )
        except ValueError as error:
            return JSONResponse({"detail": str(error)}, status_code=409)
        return JSONResponse(_user_json(user), status_code=201)

    async def one_user(request: Request) -> Response:
        uid = request.path_params["user_id"]
        try:
            if request.method == "GET":
                return JSONResponse(_user_json(state.user(uid)))
            action = await parse_json(PlaybackAction, request)
            if isinstance(action, JSONResponse):
                return action
            return JSONResponse(_user_json(state.act(uid, action.action, action.position_ms)))
        except KeyError:
            return JSONResponse({"detail": f"no user {uid}"}, status_code=404)

    async def code(request: Request) -> Response:
        wanted = await parse_json(CodeRequest, request)
        if isinstance(wanted, JSONResponse):
            return wanted
        try:
            issued = state.issue_code(
                request.path_params["user_id"], wanted.redirect_uri, wanted.scope
            )
        except KeyError:
            return JSONResponse({"detail": "no such user"}, status_code=404)
        return JSONResponse({"code": issued})

    async def expire(request: Request) -> Response:
        who = await parse_json(UserSelector, request)
        if isinstance(who, JSONResponse):
            return who
        state.expire_tokens(who.user_id)
        return Response(status_code=204)

    async def revoke(request: Request) -> Response:
        who = await parse_json(UserSelector, request)
        if isinstance(who, JSONResponse):
            return who
        state.revoke(who.user_id)
        return Response(status_code=204)

    async def configure(request: Request) -> Response:
        patch = await parse_json(SpotifySettings, request)
        if isinstance(patch, JSONResponse):
            return patch
        state.configure(patch)
        return Response(status_code=204)

    async def requests(request: Request) -> Response:
        counts = Counter(f"{r.endpoint} {r.user_id}" for r in state.log(None))
        return JSONResponse({"requests": dict(counts), "peak_per_user": state.peak_per_user()})

    return [
        Route("/_control/users", users, methods=["GET", "POST"]),
        Route("/_control/users/{user_id}", one_user, methods=["GET", "PATCH"]),
        Route("/_control/users/{user_id}/code", code, methods=["POST"]),
        Route("/_control/tokens/expire", expire, methods=["POST"]),
        Route("/_control/tokens/revoke", revoke, methods=["POST"]),
        Route("/_control/spotify", configure, methods=["PUT"]),
        Route("/_control/requests", requests, methods=["GET"]),
    ]
