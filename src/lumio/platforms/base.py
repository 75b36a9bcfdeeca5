"""What every platform adapter produces and the interface the worker calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Platform(StrEnum):
    TWITCH = "twitch"
    YOUTUBE = "youtube"
    KICK = "kick"
    TROVO = "trovo"


class ObservationKind(StrEnum):
    LIVE = "live"
    OFFLINE = "offline"
    # Timeout, 5xx, 429, quota exhausted, malformed body, token failure, unknown channel:
    # never read as offline.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LiveStream:
    title: str | None
    category: str | None
    viewers: int | None
    started_at: datetime
    # The platform's own id of this broadcast (Twitch stream id, YouTube video id, ...).
    stream_id: str


@dataclass(frozen=True, slots=True)
class Observation:
    channel_id: str
    kind: ObservationKind
    observed_at: datetime
    stream: LiveStream | None = None
    # Why the observation is unknown: a short, stable kind (metrics label) and a message.
    error_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ResolvedChannel:
    channel_id: str
    display_name: str
    # The channel's picture where the platform gives one in the same answer (Twitch does).
    avatar_url: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What the platform said about its budget in its last answer (headers or error body)."""

    limit: int | None = None
    remaining: int | None = None
    # When the budget refills (epoch seconds), e.g. Twitch's Ratelimit-Reset.
    reset_at: float | None = None
    # Seconds to wait before the next request (Retry-After, or a platform's own hint).
    retry_after: float | None = None


class PlatformError(Exception):
    """The platform could not answer (network, 5xx, 429, quota, bad body, auth)."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class ChannelNotFound(Exception):
    """A handle or id that the platform does not know."""


class PlatformAdapter(Protocol):
    platform: Platform
    # How many channels one observe() call may take (the platform's batch size).
    batch_size: int
    # Updated after every answer; the worker copies it into the shared budget in Redis.
    rate_limit: RateLimitInfo | None
    # Requests sent so far, and quota units spent (YouTube), for metrics and benchmarks.
    requests_sent: int
    quota_used: int

    async def observe(self, channel_ids: list[str]) -> list[Observation]:
        """One observation per channel id, in any order; errors become UNKNOWN, never raise."""
        ...

    async def resolve(self, handle: str) -> ResolvedChannel:
        """Turn a login/handle/URL the user typed into the platform's channel id.

        Raises ChannelNotFound or PlatformError.
        """
        ...

    def remember_live(self, channel_id: str, stream_id: str) -> None:
        """A hint from stored state that this stream was live (YouTube confirms it even when
        its feed entry is old); adapters that need no hint ignore it."""
        ...

    async def aclose(self) -> None: ...
