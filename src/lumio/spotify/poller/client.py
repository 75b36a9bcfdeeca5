"""The Spotify Web API's currently-playing (tokens and the profile: ``linking/oauth.py``).

Shapes follow PLATFORM_APIS.md §5: a 200 is parsed strictly (track, episode, ad, unknown); 204 has
no body and means nothing plays; 401 is an expired or revoked access token; 429 carries
``Retry-After`` and, for the developer quota, ``reason: QUOTA_EXCEEDED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import httpx
from pydantic import Field, ValidationError

from lumio.kit.http import HttpError, HttpPool, HttpResponse, HttpTimeout
from lumio.spotify.linking.oauth import SpotifyAccounts, SpotifyApp, SpotifyModel, retry_after
from lumio.spotify.schemas import Item, ItemKind, NowPlaying

CURRENTLY_PLAYING_PATH = "/v1/me/player/currently-playing"
# Episodes come only when asked for (PLATFORM_APIS.md §5.4).
CURRENTLY_PLAYING_QUERY = CURRENTLY_PLAYING_PATH + "?additional_types=track,episode"


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


# --- Spotify's JSON (only the fields Lumio reads; others are ignored) ---------------------------


class _Image(SpotifyModel):
    url: str


class _Named(SpotifyModel):
    name: str


class _Album(SpotifyModel):
    name: str
    images: list[_Image] = Field(default_factory=list)


class _Urls(SpotifyModel):
    spotify: str | None = None


class _Track(SpotifyModel):
    type: Literal["track"]
    # Local files have no id.
    id: str | None
    name: str
    duration_ms: int = Field(ge=0)
    artists: list[_Named]
    album: _Album | None = None
    external_urls: _Urls = Field(default_factory=_Urls)


class _Show(SpotifyModel):
    name: str
    publisher: str | None = None
    images: list[_Image] = Field(default_factory=list)


class _Episode(SpotifyModel):
    type: Literal["episode"]
    id: str
    name: str
    duration_ms: int = Field(ge=0)
    images: list[_Image] = Field(default_factory=list)
    show: _Show | None = None
    external_urls: _Urls = Field(default_factory=_Urls)


class _CurrentlyPlaying(SpotifyModel):
    timestamp: int
    progress_ms: int | None
    is_playing: bool
    currently_playing_type: Literal["track", "episode", "ad", "unknown"]
    item: Annotated[_Track | _Episode, Field(discriminator="type")] | None


class _ErrorDetail(SpotifyModel):
    status: int
    message: str = ""
    reason: str | None = None


class _ErrorBody(SpotifyModel):
    error: _ErrorDetail


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
        return RateLimited(retry_after(response.headers), quota)
    return Failed("5xx" if status >= 500 else f"http_{status}", message)


class SpotifyClient(SpotifyAccounts):
    """One app's calls. The accounts service and the profile go through ``http`` (the caller's);
    currently-playing, the hot path, through a lean keep-alive pool of its own (``kit/http.py``),
    closed by ``aclose``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        app: SpotifyApp,
        user_agent: str = "lumio",
        max_connections: int = 100,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(http, app, user_agent)
        self.api = HttpPool(app.api_base, max_connections, timeout)

    async def aclose(self) -> None:
        await self.api.aclose()

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
