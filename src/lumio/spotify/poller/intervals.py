"""When to poll an account next (DESIGN §6): pure functions over the observation and the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lumio.kit.settings import Settings
from lumio.spotify.schemas import ItemKind, NowPlaying

# Wake this long after the track's computed end, so that the next one has started.
TRACK_END_SLACK = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class SpotifyIntervals:
    playing: timedelta
    paused: timedelta
    idle: timedelta
    backoff_max: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotifyIntervals:
        spotify = settings.spotify
        return cls(
            spotify.poll_playing, spotify.poll_paused, spotify.poll_idle, spotify.backoff_max
        )


def time_left(now: NowPlaying) -> timedelta | None:
    """Until the item ends at the current pace, or None when unknown (ads, no duration)."""
    if not now.is_playing or now.item is None or now.item.duration_ms is None:
        return None
    if now.progress_ms is None:
        return None
    return timedelta(milliseconds=max(0, now.item.duration_ms - now.progress_ms))


def next_poll_delay(now: NowPlaying, intervals: SpotifyIntervals) -> timedelta:
    """Playing: the short interval, or sooner to catch the track's end. Paused: longer.
    Nothing playing (204): longest. Ads play like tracks, without a known end."""
    if now.kind is ItemKind.NOTHING:
        return intervals.idle
    if not now.is_playing:
        return intervals.paused
    left = time_left(now)
    if left is not None and left + TRACK_END_SLACK < intervals.playing:
        return left + TRACK_END_SLACK
    return intervals.playing


def error_backoff(errors: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential from ``base`` (the interval the account was on), never beyond ``cap``."""
    factor: int = 2 ** min(max(errors - 1, 0), 16)
    return min(cap, base * factor)


def refresh_due(expires_at: datetime, now: datetime, margin: timedelta) -> bool:
    """Refresh ahead of expiry, so that no poll ever goes out with a dead token."""
    return expires_at - now <= margin


def now_playing_ttl(delay: timedelta) -> int:
    """Seconds the now-playing key lives: past the next poll, so that it expires (null: nothing
    known) only when polling stopped or failed."""
    return max(10, int((2 * delay).total_seconds()) + 5)
