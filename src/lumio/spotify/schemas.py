"""Data passed between the Spotify layers: what plays, tokens, the link, claimed work."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson

from lumio.kit.views import ApiModel


class ItemKind(StrEnum):
    TRACK = "track"
    EPISODE = "episode"
    AD = "ad"
    # Spotify's own "unknown" currently_playing_type.
    UNKNOWN = "unknown"
    # 204 (or no device): Spotify says nothing plays.
    NOTHING = "nothing"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    # The refresh token was revoked or expired (invalid_grant): the user must link again.
    NEEDS_REAUTH = "needs_reauth"


@dataclass(frozen=True, slots=True)
class Item:
    """A track or an episode, reduced to what Lumio shows and keeps."""

    kind: ItemKind
    item_id: str | None
    title: str
    artists: tuple[str, ...]
    album: str | None
    art_url: str | None
    url: str | None
    duration_ms: int | None


class NowPlayingView(ApiModel):
    """Now playing flattened as both transports render it (declared once, here)."""

    kind: str
    is_playing: bool
    item_id: str | None
    title: str | None
    artists: list[str]
    album: str | None
    art_url: str | None
    url: str | None
    progress_ms: int | None
    duration_ms: int | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class NowPlaying:
    """One observation of the account's player."""

    kind: ItemKind
    is_playing: bool
    progress_ms: int | None
    item: Item | None
    observed_at: datetime

    def view(self) -> NowPlayingView:
        item = self.item
        return NowPlayingView(
            kind=self.kind.value,
            is_playing=self.is_playing,
            item_id=item.item_id if item else None,
            title=item.title if item else None,
            artists=list(item.artists) if item else [],
            album=item.album if item else None,
            art_url=item.art_url if item else None,
            url=item.url if item else None,
            progress_ms=self.progress_ms,
            duration_ms=item.duration_ms if item else None,
            observed_at=self.observed_at,
        )

    @classmethod
    def nothing(cls, observed_at: datetime) -> NowPlaying:
        return cls(ItemKind.NOTHING, False, None, None, observed_at)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "kind": self.kind.value,
                "is_playing": self.is_playing,
                "progress_ms": self.progress_ms,
                "observed_at": self.observed_at.astimezone(UTC).isoformat(),
                "item": None if self.item is None else _item_json(self.item),
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> NowPlaying:
        data = orjson.loads(raw)
        item = data["item"]
        return cls(
            kind=ItemKind(data["kind"]),
            is_playing=bool(data["is_playing"]),
            progress_ms=data["progress_ms"],
            item=None if item is None else _item_of(item),
            observed_at=datetime.fromisoformat(data["observed_at"]),
        )


def _item_json(item: Item) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "id": item.item_id,
        "title": item.title,
        "artists": list(item.artists),
        "album": item.album,
        "art_url": item.art_url,
        "url": item.url,
        "duration_ms": item.duration_ms,
    }


def _item_of(data: dict[str, Any]) -> Item:
    return Item(
        kind=ItemKind(data["kind"]),
        item_id=data["id"],
        title=data["title"],
        artists=tuple(data["artists"]),
        album=data["album"],
        art_url=data["art_url"],
        url=data["url"],
        duration_ms=data["duration_ms"],
    )


class Play(ApiModel):
    """A row of the play history: an item that started playing (REST and GraphQL render this
    one declaration)."""

    kind: str
    item_id: str | None
    title: str
    artists: list[str]
    album: str | None
    art_url: str | None
    url: str | None
    duration_ms: int | None
    started_at: datetime

    @classmethod
    def of(cls, item: Item, started_at: datetime) -> Play:
        return cls(
            kind=item.kind.value,
            item_id=item.item_id,
            title=item.title,
            artists=list(item.artists),
            album=item.album,
            art_url=item.art_url,
            url=item.url,
            duration_ms=item.duration_ms,
            started_at=started_at,
        )


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the accounts service answered; ``refresh_token`` is None when it sent none."""

    access_token: str
    expires_at: datetime
    refresh_token: str | None
    scope: str


@dataclass(frozen=True, slots=True)
class SpotifyProfile:
    user_id: str
    display_name: str | None


@dataclass(frozen=True, slots=True)
class Connection:
    """An account's link as the API shows it (never the tokens)."""

    account_id: UUID
    spotify_user_id: str
    display_name: str | None
    scope: str
    status: LinkStatus
    status_detail: str | None
    linked_at: datetime
    gate_open: bool
    last_polled_at: datetime | None
    last_error: str | None

    def view(self) -> ConnectionView:
        return ConnectionView(
            spotify_user_id=self.spotify_user_id,
            display_name=self.display_name,
            scope=self.scope,
            status=self.status.value,
            needs_reauthorization=self.status is LinkStatus.NEEDS_REAUTH,
            status_detail=self.status_detail,
            linked_at=self.linked_at,
            polling=self.gate_open and self.status is LinkStatus.ACTIVE,
            last_polled_at=self.last_polled_at,
            last_error=self.last_error,
        )


class ConnectionView(ApiModel):
    """The link as both transports render it (declared once, here)."""

    spotify_user_id: str
    display_name: str | None
    scope: str
    status: str
    needs_reauthorization: bool
    status_detail: str | None
    linked_at: datetime
    polling: bool
    last_polled_at: datetime | None
    last_error: str | None


class Authorization(ApiModel):
    """Where to send the user's browser to link Spotify, and until when the offer holds."""

    authorize_url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewLink:
    """A completed authorisation, ready to store (tokens already encrypted)."""

    account_id: UUID
    profile: SpotifyProfile
    scope: str
    access_token: bytes
    refresh_token: bytes
    access_expires_at: datetime
    linked_by: UUID
    gate_open: bool
    linked_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedConnection:
    """A connection a worker holds a lease on, with its encrypted tokens and last playback."""

    account_id: UUID
    access_token: bytes
    refresh_token: bytes
    access_expires_at: datetime
    playback: dict[str, Any]
    next_poll_at: datetime
    consecutive_errors: int
    online: bool


@dataclass(frozen=True, slots=True)
class StoredTokens:
    """A refreshed access token (and refresh token, when Spotify sent a new one), encrypted."""

    account_id: UUID
    access_token: bytes
    refresh_token: bytes | None
    access_expires_at: datetime
    scope: str


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What to store for a polled connection."""

    account_id: UUID
    next_poll_at: datetime
    playback: dict[str, Any]
    consecutive_errors: int
    last_error: str | None
    polled_at: datetime
    status: LinkStatus = LinkStatus.ACTIVE
    status_detail: str | None = None


@dataclass(frozen=True, slots=True)
class GateChange:
    account_id: UUID
    was_open: bool
    is_open: bool


@dataclass(frozen=True, slots=True)
class GateRow:
    """A connected account with what PostgreSQL says about its gate."""

    account_id: UUID
    online: bool


@dataclass(slots=True)
class GateChanges:
    opened: list[UUID] = field(default_factory=list)
    closed: list[UUID] = field(default_factory=list)

    @classmethod
    def of(cls, changes: list[GateChange]) -> GateChanges:
        return cls(
            opened=[c.account_id for c in changes if c.is_open and not c.was_open],
            closed=[c.account_id for c in changes if c.was_open and not c.is_open],
        )
