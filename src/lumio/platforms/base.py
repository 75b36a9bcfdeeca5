"""What every platform adapter produces and the interface the worker calls."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
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
    # None when the platform gave no usable start time (a sentinel, garbage).
    started_at: datetime | None
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


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one ``observe()`` call did: its observations and its own cost.

    Counted per call, so that batches in flight at once on one adapter never count each
    other's requests or quota units (the worker charges the shared budget with these).
    """

    observations: list[Observation]
    requests: int = 0
    quota_units: int = 0
    # The last rate-limit answer this call saw (None: the platform said nothing about it).
    rate_limit: RateLimitInfo | None = None
    # Of ``quota_units``, those already counted in the shared budget when they were granted
    # (YouTube's quota pacer): the worker must not count them again.
    quota_prepaid: int = 0


@dataclass(slots=True)
class CallTally:
    """The running cost of one ``observe()`` call (see ``tallying``)."""

    requests: int = 0
    quota_units: int = 0
    rate_limit: RateLimitInfo | None = None
    quota_prepaid: int = 0

    def result(self, observations: list[Observation]) -> PollResult:
        return PollResult(
            observations, self.requests, self.quota_units, self.rate_limit, self.quota_prepaid
        )


# The tally of the observe() call running in this task (and the tasks it gathers).
_tally: ContextVar[CallTally | None] = ContextVar("lumio_call_tally", default=None)

# No stored live streams: the default of observe()'s ``live_streams``.
NO_LIVE_STREAMS: Mapping[str, str] = {}


@contextmanager
def tallying() -> Iterator[CallTally]:
    """Count the requests, quota units and rate-limit answers of the calls made inside."""
    tally = CallTally()
    token = _tally.set(tally)
    try:
        yield tally
    finally:
        _tally.reset(token)


def count_request(quota_units: int = 0) -> None:
    tally = _tally.get()
    if tally is not None:
        tally.requests += 1
        tally.quota_units += quota_units


def count_quota(units: int) -> None:
    tally = _tally.get()
    if tally is not None:
        tally.quota_units += units


def count_prepaid(units: int) -> None:
    """Units of this call that were counted in the shared budget when granted."""
    tally = _tally.get()
    if tally is not None:
        tally.quota_prepaid += units


def saw_rate_limit(info: RateLimitInfo | None) -> None:
    tally = _tally.get()
    if tally is not None:
        tally.rate_limit = info


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
    # Totals over the adapter's life (every call, resolve() included), for benchmarks; the
    # worker reads each call's own cost from its PollResult instead.
    rate_limit: RateLimitInfo | None
    requests_sent: int
    quota_used: int

    async def observe(
        self, channel_ids: list[str], live_streams: Mapping[str, str] = NO_LIVE_STREAMS
    ) -> PollResult:
        """One observation per channel id, in any order; errors become UNKNOWN, never raise.

        ``live_streams`` maps a channel id to the stream id stored as live for it (YouTube
        confirms such a video even when its feed entry is old); adapters that need no hint
        ignore it.
        """
        ...

    async def resolve(self, handle: str) -> ResolvedChannel:
        """Turn a login/handle/URL the user typed into the platform's channel id.

        Raises ChannelNotFound or PlatformError.
        """
        ...

    async def aclose(self) -> None: ...
