"""What the platform worker tells the history: sessions, segments and samples of a poll batch.

Here rather than in ``lumio.history`` because it reads the state machine's decisions, and the
history package must not import detection (detection writes history, not the other way round).
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from lumio.detection.state_machine import (
    ONLINE_PHASES,
    ChannelState,
    SetOffline,
    SetOnline,
    Transition,
    UpdateStreamData,
)
from lumio.events.schemas import Reason
from lumio.history.schemas import HistoryBatch, Sighting, StreamEnd
from lumio.platforms.base import LiveStream, Platform


def note_history(
    batch: HistoryBatch,
    account_id: UUID,
    platform: Platform,
    before: ChannelState,
    transition: Transition,
    grace: timedelta,
) -> None:
    """Record what one channel's transition means for its session."""
    match transition.decision:
        case SetOnline(stream, observed_at) | UpdateStreamData(stream, observed_at):
            opens = isinstance(transition.decision, SetOnline)
            new = opens or _segment_changed(before, stream)
            batch.sightings.append(Sighting(account_id, platform, stream, observed_at, new, opens))
        case SetOffline() if transition.reason is Reason.WENT_OFFLINE:
            since = before.grace_since or transition.decision.observed_at
            batch.ends.append(StreamEnd(account_id, platform, since, grace))


def _segment_changed(before: ChannelState, stream: LiveStream) -> bool:
    previous = before.stream
    if previous is None or before.phase not in ONLINE_PHASES:
        return True
    return (previous.title, previous.category) != (stream.title, stream.category)
