"""What a push hint changes in detection, as pure functions (issue 11, DESIGN §3).

- A fresh Twitch ``stream.online`` arms the second sighting: a channel seen offline (or new) is
  put in PENDING_ONLINE with all but one of its sightings, so one poll that sees the stream live
  is enough. The poll still decides: if it says offline (Helix lags behind EventSub), the
  channel stays offline and is polled again soon while the hint is fresh.
- Arming never touches a channel that shows online, so push and poll cannot announce one stream
  twice.
- A channel whose push subscriptions are all enabled is polled offline at the slower push
  interval (the poll stays as the safety net for lost messages); live and settling channels keep
  their intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lumio.detection.state_machine import ChannelState, DetectorConfig, Phase
from lumio.platforms.base import LiveStream
from lumio.push.schemas import PushFacts

# How long a stream.online keeps arming polls and keeps an offline channel polled often.
HINT_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class PushIntervals:
    # The offline interval of a channel with healthy push (LUMIO_POLL_OFFLINE_WITH_PUSH_SECONDS).
    offline: timedelta
    # How soon to look again while a fresh online hint is not confirmed yet.
    unconfirmed: timedelta


def fresh_online(facts: PushFacts | None, now: datetime) -> bool:
    return (
        facts is not None
        and facts.online is not None
        and facts.online_at is not None
        and now - facts.online_at <= HINT_WINDOW
    )


def arm(
    state: ChannelState, facts: PushFacts | None, now: datetime, config: DetectorConfig
) -> ChannelState:
    """The state to feed the poll's observation into, armed by a fresh online hint."""
    if not fresh_online(facts, now) or config.confirm_online_sightings < 2:
        return state
    if state.phase not in (Phase.NEW, Phase.OFFLINE):
        return state
    assert facts is not None and facts.online is not None and facts.online_at is not None
    announced = LiveStream(None, None, None, facts.online.started_at, facts.online.stream_id)
    return ChannelState(
        phase=Phase.PENDING_ONLINE,
        stream=announced,
        sightings=config.confirm_online_sightings - 1,
        first_sighted_at=facts.online_at,
        last_observed_at=state.last_observed_at,
    )


def push_delay(
    state: ChannelState,
    facts: PushFacts | None,
    delay: timedelta,
    intervals: PushIntervals,
    claimed_at: datetime,
    now: datetime,
) -> timedelta:
    """The next poll's delay once push is taken into account (``delay``: the poll-only one)."""
    if facts is None:
        return delay
    if facts.hinted_at is not None and facts.hinted_at > claimed_at:
        # A message arrived while this batch was polled: look again at once.
        return timedelta(0)
    offline = state.phase in (Phase.NEW, Phase.OFFLINE)
    if offline and fresh_online(facts, now):
        return min(delay, intervals.unconfirmed)
    if offline and facts.enabled:
        return intervals.offline
    return delay
