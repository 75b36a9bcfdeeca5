"""From one observation of the player to the next: what changed, and what enters the history.

Pure: the previous state (kept in ``spotify_connections.playback``) and an observation in, the new
state, whether to announce ``now_playing_changed`` and the play to record out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lumio.spotify.schemas import ItemKind, NowPlaying, Play

# Progress falling back by this much on the same item is a replay (or a seek to the start):
# a new play in the history, though not a change of track.
REPLAY_DROP_MS = 10_000
REPLAY_NEAR_START_MS = 10_000


@dataclass(frozen=True, slots=True)
class PlaybackState:
    kind: ItemKind | None = None
    item_id: str | None = None
    is_playing: bool = False
    progress_ms: int | None = None
    # This play of the item is in the history already.
    recorded: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": None if self.kind is None else self.kind.value,
            "item_id": self.item_id,
            "is_playing": self.is_playing,
            "progress_ms": self.progress_ms,
            "recorded": self.recorded,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlaybackState:
        """The stored state; an empty or damaged one is a fresh start (nothing known)."""
        try:
            kind = data.get("kind")
            return cls(
                kind=None if kind is None else ItemKind(kind),
                item_id=data.get("item_id"),
                is_playing=bool(data.get("is_playing", False)),
                progress_ms=data.get("progress_ms"),
                recorded=bool(data.get("recorded", False)),
            )
        except (ValueError, AttributeError):
            return cls()


@dataclass(frozen=True, slots=True)
class Step:
    state: PlaybackState
    # The track (or ad, episode, nothing) or the play state differs from the last poll.
    changed: bool
    play: Play | None


def _replayed(previous: PlaybackState, now: NowPlaying) -> bool:
    return (
        previous.progress_ms is not None
        and now.progress_ms is not None
        and now.progress_ms < REPLAY_NEAR_START_MS
        and previous.progress_ms - now.progress_ms >= REPLAY_DROP_MS
    )


def advance(previous: PlaybackState, now: NowPlaying) -> Step:
    item_id = now.item.item_id if now.item else None
    same_item = (previous.kind, previous.item_id) == (now.kind, item_id)
    changed = not same_item or previous.is_playing != now.is_playing
    recorded = same_item and previous.recorded and not _replayed(previous, now)
    play = None
    if now.item is not None and now.is_playing and not recorded:
        progress = timedelta(milliseconds=now.progress_ms or 0)
        play = Play.of(now.item, now.observed_at - progress)
        recorded = True
    state = PlaybackState(now.kind, item_id, now.is_playing, now.progress_ms, recorded)
    return Step(state, changed, play)
