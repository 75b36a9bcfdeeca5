"""Data passed between the history layers: what the worker records, what the API answers.

The read shapes (``*View``) are declared once here; REST renders them as camelCase JSON and
GraphQL wraps the same classes as its types.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

from lumio.platforms.base import LiveStream, Platform

ChannelKey = tuple[UUID, Platform]

# --- what the platform worker records ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sighting:
    """A live observation of a channel whose row shows online: opens or continues its session."""

    account_id: UUID
    platform: Platform
    stream: LiveStream
    observed_at: datetime
    # Title or category differ from the last sighting (or the stream is new): a new segment.
    new_segment: bool
    # set_online (a go-live or another broadcast): an open session of another stream is closed.
    opens: bool


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The channel went offline: its open session closes."""

    account_id: UUID
    platform: Platform
    # The first offline sighting; a longer gap since the last live one than the grace means
    # nobody watched the end (a worker outage): the end is inferred.
    offline_since: datetime
    grace: timedelta


@dataclass(frozen=True, slots=True)
class SessionMark:
    """What the channel's event says about its session."""

    session_id: UUID
    duration_seconds: int | None = None


@dataclass(slots=True)
class HistoryBatch:
    """The history writes of one poll batch (``detection.history_feed`` fills it from the
    state machine's decisions)."""

    sightings: list[Sighting] = field(default_factory=list)
    ends: list[StreamEnd] = field(default_factory=list)

    def only(self, keys: Container[ChannelKey]) -> HistoryBatch:
        """The writes of the channels whose status write went through."""
        return HistoryBatch(
            [s for s in self.sightings if (s.account_id, s.platform) in keys],
            [e for e in self.ends if (e.account_id, e.platform) in keys],
        )


@dataclass(frozen=True, slots=True)
class GeneratedSession:
    """Made-up history for the demo account (``lumio dev``), never observed."""

    platform: Platform
    stream_id: str
    started_at: datetime
    ended_at: datetime
    # (from, title, category), the first from the session's start.
    segments: list[tuple[datetime, str, str]]
    samples: list[tuple[datetime, int]]


# --- what the API answers ------------------------------------------------------------------------


class Resolution(StrEnum):
    RAW = "raw"
    MINUTE = "1m"
    FIVE_MINUTES = "5m"


@dataclass(frozen=True)
class SegmentView:
    started_at: datetime
    ended_at: datetime | None
    title: str | None
    category: str | None


@dataclass(frozen=True)
class ViewerSeriesView:
    """Columns of equal length: ``t`` in Unix seconds; ``min``/``max`` only for aggregates."""

    platform: str
    session_id: UUID
    resolution: str
    t: list[int]
    viewers: list[int]
    min: list[int] | None
    max: list[int] | None


@dataclass(frozen=True)
class TrackView:
    title: str
    artists: list[str]
    album: str | None
    url: str | None
    kind: str
    started_at: datetime


@dataclass(frozen=True)
class StreamSessionView:
    id: UUID
    platform: str
    stream_id: str
    started_at: datetime
    ended_at: datetime | None
    ended_inferred: bool
    duration_seconds: int
    title: str | None
    category: str | None
    peak_viewers: int | None
    average_viewers: float | None
    generated: bool


@dataclass(frozen=True)
class StreamSessionDetailView:
    session: StreamSessionView
    segments: list[SegmentView]
    viewers: ViewerSeriesView
    tracks: list[TrackView]


@dataclass(frozen=True)
class BroadcastView:
    """Sessions of one account that overlap in time (a simulcast is one broadcast)."""

    id: UUID
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: int
    platforms: list[str]
    titles: list[str]
    # The highest sum of simultaneous platform viewers (per minute).
    peak_viewers: int | None
    average_viewers: float | None
    sessions: list[StreamSessionView]


@dataclass(frozen=True)
class PlatformStatsView:
    platform: str
    streams: int
    hours_live: float
    average_viewers: float | None
    peak_viewers: int | None


@dataclass(frozen=True)
class StreamStatsView:
    started_at: datetime
    ended_at: datetime
    streams: int
    hours_live: float
    average_viewers: float | None
    peak_viewers: int | None
    platforms: list[PlatformStatsView]


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
