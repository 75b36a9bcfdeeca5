"""The Spotify accounts service (authorisation, tokens) and the Web API's currently-playing.

Shapes follow PLATFORM_APIS.md §5: a 200 is parsed strictly (track, episode, ad, unknown); 204 has
no body and means nothing plays; 401 is an expired or revoked access token; 429 carries
``Retry-After`` and, for the developer quota, ``reason: QUOTA_EXCEEDED``; the token endpoint may
omit ``refresh_token`` and answers ``invalid_grant`` for an expired or revoked one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lumio.kit.settings import Settings
from lumio.spotify.poller.http import HttpError, HttpPool, HttpResponse, HttpTimeout
from lumio.spotify.schemas import Item, ItemKind, NowPlaying, SpotifyProfile, TokenGrant

SCOPES = ("user-read-currently-playing", "user-read-playback-state")
CURRENTLY_PLAYING_PATH = "/v1/me/player/currently-playing"
# Episodes come only when asked for (PLATFORM_APIS.md §5.4).
CURRENTLY_PLAYING_QUERY = CURRENTLY_PLAYING_PATH + "?additional_types=track,episode"
PROFILE_PATH = "/v1/me"
TOKEN_PATH = "/api/token"  # noqa: S105 (a path, not a secret)
AUTHORIZE_PATH = "/authorize"
# Spotify sends Retry-After with every 429; this is only for one that lacks it.
DEFAULT_RETRY_AFTER = 5.0


# --- answers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Playing:
    now: NowPlaying


@dataclass(frozen=True, slots=True)
class Unauthorized:
    message: str


@dataclass(frozen=True, slots=True)
class Denied:
    """403: a bad OAuth request (scope, user not allowed in development mode); re-auth won't help."""

    message: str


@dataclass(frozen=True, slots=True)
class RateLimited:
    retry_after: float
    quota_exceeded: bool


@dataclass(frozen=True, slots=True)
class Failed:
    kind: str
    detail: str


Answer = Playing | Unauthorized | Denied | RateLimited | Failed


class TokenError(Exception):
    """The accounts service did not give a token."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class InvalidGrant(TokenError):
    """The refresh token (or code) is expired, revoked or unknown: only a new link helps."""


# --- Spotify's JSON (only the fields Lumio reads; others are ignored) ---------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Image(_Model):
    url: str


class _Named(_Model):
    name: str


class _Album(_Model):
    name: str
    images: list[_Image] = Field(default_factory=list)


class _Urls(_Model):
    spotify: str | None = None


class _Track(_Model):
    type: Literal["track"]
    # Local files have no id.
    id: str | None
    name: str
    duration_ms: int = Field(ge=0)
    artists: list[_Named]
    album: _Album | None = None
    external_urls: _Urls = Field(default_factory=_Urls)


class _Show(_Model):
    name: str
    publisher: str | None = None
    images: list[_Image] = Field(default_factory=list)


class _Episode(_Model):
    type: Literal["episode"]
    id: str
    name: str
    duration_ms: int = Field(ge=0)
    images: list[_Image] = Field(default_factory=list)
    show: _Show | None = None
    external_urls: _Urls = Field(default_factory=_Urls)


class _CurrentlyPlaying(_Model):
    timestamp: int
    progress_ms: int | None
    is_playing: bool
    currently_playing_type: Literal["track", "episode", "ad", "unknown"]
    item: Annotated[_Track | _Episode, Field(discriminator="type")] | None


class _ErrorDetail(_Model):
    status: int
    message: str = ""
    reason: str | None = None


class _ErrorBody(_Model):
    error: _ErrorDetail


class _TokenBody(_Model):
    access_token: str = Field(min_length=1)
    token_type: str
    expires_in: int = Field(gt=0)
    refresh_token: str | None = None
    scope: str = ""


class _TokenErrorBody(_Model):
    error: str
    error_description: str = ""


class _Profile(_Model):
    id: str = Field(min_length=1)
    display_name: str | None = None


def _first_image(images: list[_Image]) -> str | None:
    # Spotify lists images widest first.
    return images[0].url if images else None


def _track(track: _Track) -> Item:
    album = track.album
    return Item(
        kind=ItemKind.TRACK,
        item_id=track.id,
        title=track.name,
        artists=tuple(a.name for a in track.artists),
        album=album.name if album else None,
        art_url=_first_image(album.images) if album else None,
        url=track.external_urls.spotify,
        duration_ms=track.duration_ms,
    )


def _episode(episode: _Episode) -> Item:
    show = episode.show
    return Item(
        kind=ItemKind.EPISODE,
        item_id=episode.id,
        title=episode.name,
        artists=tuple(n for n in (show.publisher or show.name,) if n) if show else (),
        album=show.name if show else None,
        art_url=_first_image(episode.images) or (_first_image(show.images) if show else None),
        url=episode.external_urls.spotify,
        duration_ms=episode.duration_ms,
    )


def parse_currently_playing(body: bytes, observed_at: datetime) -> NowPlaying:
    """A 200 body as a NowPlaying; raises ValueError when it is not the documented shape."""
    try:
        parsed = _CurrentlyPlaying.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(
            f"unexpected currently-playing body: {exc.error_count()} error(s)"
        ) from exc
    kind = ItemKind(parsed.currently_playing_type)
    item = None
    if isinstance(parsed.item, _Track):
        item = _track(parsed.item)
    elif isinstance(parsed.item, _Episode):
        item = _episode(parsed.item)
    if item is not None and item.kind is not kind and kind is not ItemKind.UNKNOWN:
        raise ValueError(f"currently_playing_type {kind} with a {item.kind} item")
    # An ad (and an episode without additional_types) comes with item null.
    return NowPlaying(
        item.kind if item else kind, parsed.is_playing, parsed.progress_ms, item, observed_at
    )


def retry_after(response: httpx.Response | HttpResponse) -> float:
    raw = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _error_of(response: HttpResponse) -> _ErrorDetail | None:
    try:
        return _ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return None


def _answer_for_error(response: HttpResponse) -> Answer:
    error = _error_of(response)
    message = error.message if error else response.text[:200]
    status = response.status_code
    if status == 401:
        return Unauthorized(message)
    if status == 403:
        return Denied(message)
    if status == 429:
        quota = error is not None and error.reason == "QUOTA_EXCEEDED"
        return RateLimited(retry_after(response), quota)
    return Failed("5xx" if status >= 500 else f"http_{status}", message)


@dataclass(frozen=True, slots=True)
class SpotifyApp:
    client_id: str
    client_secret: str
    accounts_base: str
    api_base: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotifyApp:
        return cls(
            settings.spotify.client_id,
            settings.spotify.client_secret,
            settings.spotify.accounts_base.rstrip("/"),
            settings.spotify.api_base.rstrip("/"),
        )

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def basic_auth(self) -> str:
        pair = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "scope": " ".join(SCOPES),
                "state": state,
            }
        )
        return f"{self.accounts_base}{AUTHORIZE_PATH}?{query}"


class SpotifyClient:
    """One app's calls. The accounts service and the profile go through ``http`` (the caller's);
    currently-playing, the hot path, through a lean keep-alive pool of its own (``http.py``),
    closed by ``aclose``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        app: SpotifyApp,
        user_agent: str = "lumio",
        max_connections: int = 100,
        timeout: float = 10.0,
    ) -> None:
        self.http = http
        self.app = app
        self.headers = {"User-Agent": user_agent}
        self.api = HttpPool(app.api_base, max_connections, timeout)
        self.requests_sent = 0

    async def aclose(self) -> None:
        await self.api.aclose()

    async def exchange_code(self, code: str, redirect_uri: str, now: datetime) -> TokenGrant:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return await self._token(form, now)

    async def refresh(self, refresh_token: str, now: datetime) -> TokenGrant:
        return await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, now
        )

    async def _token(self, form: dict[str, str], now: datetime) -> TokenGrant:
        headers = {**self.headers, "Authorization": self.app.basic_auth()}
        try:
            response = await self.http.post(
                self.app.accounts_base + TOKEN_PATH, data=form, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TokenError(f"the accounts service did not answer: {exc!r}") from exc
        finally:
            self.requests_sent += 1
        if response.status_code == 200:
            return _grant(response, now)
        if response.status_code == 429:
            raise TokenError("the accounts service is rate limiting", retry_after(response))
        try:
            error = _TokenErrorBody.model_validate_json(response.content)
        except ValidationError:
            raise TokenError(f"token endpoint answered {response.status_code}") from None
        if error.error == "invalid_grant":
            raise InvalidGrant(error.error_description or "invalid_grant")
        raise TokenError(f"{error.error}: {error.error_description}".rstrip(": "))

    async def profile(self, access_token: str) -> SpotifyProfile:
        """The linked user (``GET /v1/me``); raises TokenError when it cannot be read."""
        try:
            response = await self._get(PROFILE_PATH, access_token)
            response.raise_for_status()
            profile = _Profile.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            raise TokenError(f"could not read the Spotify profile: {exc}") from exc
        return SpotifyProfile(profile.id, profile.display_name)

    async def currently_playing(self, access_token: str, now: datetime) -> Answer:
        headers = {
            **self.headers,
            "Authorization": f"Bearer {access_token}",
            "Accept": "application/json",
        }
        self.requests_sent += 1
        try:
            response = await self.api.get(CURRENTLY_PLAYING_QUERY, headers)
        except HttpTimeout as exc:
            return Failed("timeout", str(exc))
        except HttpError as exc:
            return Failed("network", str(exc))
        # 204: nothing plays, no active device or a private session. Spotify's own 404 ("non
        # existing id", seen with no device) alike; a 404 without its error body is a wrong URL.
        if response.status_code == 204 or (
            response.status_code == 404 and _error_of(response) is not None
        ):
            return Playing(NowPlaying.nothing(now))
        if response.status_code != 200:
            return _answer_for_error(response)
        try:
            return Playing(parse_currently_playing(response.content, now))
        except ValueError as exc:
            return Failed("garbage", str(exc))

    async def _get(self, path: str, access_token: str) -> httpx.Response:
        headers = {**self.headers, "Authorization": f"Bearer {access_token}"}
        try:
            return await self.http.get(self.app.api_base + path, headers=headers)
        finally:
            self.requests_sent += 1


def _grant(response: httpx.Response, now: datetime) -> TokenGrant:
    try:
        body = _TokenBody.model_validate_json(response.content)
    except ValidationError as exc:
        raise TokenError("the token endpoint answered an unexpected body") from exc
    if body.token_type.lower() != "bearer":
        raise TokenError(f"unexpected token type {body.token_type!r}")
    return TokenGrant(
        access_token=body.access_token,
        expires_at=now + timedelta(seconds=body.expires_in),
        refresh_token=body.refresh_token,
        scope=body.scope,
    )
