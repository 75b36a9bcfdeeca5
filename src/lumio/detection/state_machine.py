"""The per-channel live/offline state machine of DESIGN §3, as pure functions over plain data.

The worker keeps one :class:`ChannelState` per linked channel (as JSON, between polls), feeds every
observation to :func:`step` with its own clock, performs the returned write and then publishes the
returned event reason. Nothing here does I/O or reads the time.

Choices where DESIGN §3 is silent:

- ``now`` is the state machine's clock: the grace period and the pending sightings are timed with
  it. Writes carry ``observation.observed_at`` instead, because the database's "never backwards"
  rule compares observation times.
- A fresh channel (empty state) that is seen offline gets one ``set_offline`` (no event), so that
  its row exists; after that, offline → offline writes nothing.
- A pending go-live that is then seen offline also writes ``set_offline`` (no event): the channel may
  be fresh and have no row yet, and an offline write on an offline row changes nothing.
- Every live sighting of a stream that is already online writes ``update_stream_data``, which keeps
  the row's ``updated_at`` fresh; ``stream_updated`` is published only when title, category or
  viewers changed.
- A comeback inside the grace continues the same stream, keeping its stream id and started_at
  even when the platform reports a new broadcast (a reconnect): no offline, no event unless the
  details changed.
- A different platform stream id while live (no offline seen in between) is a new stream on a
  channel that never showed offline: ``set_online`` (new started_at and details) with
  ``stream_updated``, not ``went_online``, so ``went_online`` and ``went_offline`` strictly alternate. A restart after the
  grace period has run out with an offline sighting is a normal offline → live: ``went_online``.
- UNKNOWN changes nothing: not the phase, not the grace start, not ``last_observed_at``. Offline is
  declared only on a fresh offline observation once the grace period has elapsed.
- A LIVE observation without stream details is malformed and is treated as UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from lumio.channel_status.schemas import OfflineWrite, OnlineWrite, StreamDataWrite
from lumio.events.schemas import Reason
from lumio.platforms.base import LiveStream, Observation, ObservationKind, Platform

STATE_VERSION = 1


class Phase(StrEnum):
    # Never observed live or offline: no row has been written by the detector yet.
    NEW = "new"
    OFFLINE = "offline"
    # Seen live, waiting for more sightings before set_online (platforms that flap at go-live).
    PENDING_ONLINE = "pending_online"
    LIVE = "live"
    # Seen offline after being live; the row still shows online until the grace period ends.
    GRACE = "grace"


# Phases in which the channel_status row shows the channel online.
ONLINE_PHASES = frozenset({Phase.LIVE, Phase.GRACE})


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Detection settings of one platform."""

    grace_period: timedelta = timedelta(seconds=120)
    # Live sightings needed before set_online: 2 for platforms that flap at go-live.
    confirm_online_sightings: int = 1

    def __post_init__(self) -> None:
        if self.grace_period < timedelta(0):
            raise ValueError("grace_period must not be negative")
        if self.confirm_online_sightings < 1:
            raise ValueError("confirm_online_sightings must be at least 1")


@dataclass(frozen=True, slots=True)
class SetOnline:
    stream: LiveStream
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class SetOffline:
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class UpdateStreamData:
    stream: LiveStream
    observed_at: datetime


Decision = SetOnline | SetOffline | UpdateStreamData
Write = OnlineWrite | OfflineWrite | StreamDataWrite


def to_write(decision: Decision, account_id: UUID, platform: Platform) -> Write:
    """The channel_status write that carries out ``decision`` for one account's channel."""
    match decision:
        case SetOnline(stream, observed_at):
            return OnlineWrite(
                account_id,
                platform,
                stream.title,
                stream.category,
                stream.viewers,
                stream.started_at,
                observed_at,
            )
        case SetOffline(observed_at):
            return OfflineWrite(account_id, platform, observed_at)
        case UpdateStreamData(stream, observed_at):
            return StreamDataWrite(
                account_id, platform, stream.title, stream.category, stream.viewers, observed_at
            )


@dataclass(frozen=True, slots=True)
class ChannelState:
    """What the worker keeps per linked channel between polls; ``ChannelState()`` is a fresh one."""

    phase: Phase = Phase.NEW
    # The stream last seen: set in LIVE, GRACE and PENDING_ONLINE, None otherwise.
    stream: LiveStream | None = None
    # When the first offline observation of the current grace period was applied (GRACE only).
    grace_since: datetime | None = None
    # Live sightings so far and when the first one was applied (PENDING_ONLINE only).
    sightings: int = 0
    first_sighted_at: datetime | None = None
    # When the last live or offline observation was applied (unknowns do not count).
    last_observed_at: datetime | None = None

    def __post_init__(self) -> None:
        # Guards the JSON column: a state the machine could never reach is rejected at once.
        needs_stream = self.phase in ONLINE_PHASES or self.phase is Phase.PENDING_ONLINE
        if needs_stream != (self.stream is not None):
            raise ValueError(f"phase {self.phase} {'needs' if needs_stream else 'has no'} stream")
        if (self.phase is Phase.GRACE) != (self.grace_since is not None):
            raise ValueError("grace_since is set exactly in phase grace")
        pending = self.phase is Phase.PENDING_ONLINE
        if pending != (self.sightings > 0 and self.first_sighted_at is not None):
            raise ValueError("sightings and first_sighted_at are set exactly in pending_online")

    def to_json(self) -> dict[str, object]:
        return {
            "v": STATE_VERSION,
            "phase": self.phase.value,
            "stream": None if self.stream is None else _stream_to_json(self.stream),
            "grace_since": _time_to_json(self.grace_since),
            "sightings": self.sightings,
            "first_sighted_at": _time_to_json(self.first_sighted_at),
            "last_observed_at": _time_to_json(self.last_observed_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ChannelState:
        """Parse :meth:`to_json`'s output; an empty mapping is a fresh channel.

        Raises ValueError when the data is not a state this version wrote.
        """
        if not data:
            return cls()
        if data.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported detector state version: {data.get('v')!r}")
        stream = data.get("stream")
        return cls(
            phase=Phase(_text(data, "phase")),
            stream=None if stream is None else _stream_from_json(_object(stream, "stream")),
            grace_since=_time(data, "grace_since"),
            sightings=_count(data, "sightings"),
            first_sighted_at=_time(data, "first_sighted_at"),
            last_observed_at=_time(data, "last_observed_at"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of one observation: the state to keep, at most one write, at most one event."""

    state: ChannelState
    decision: Decision | None = None
    reason: Reason | None = None

    def write_for(self, account_id: UUID, platform: Platform) -> Write | None:
        return None if self.decision is None else to_write(self.decision, account_id, platform)


def step(
    state: ChannelState, observation: Observation, now: datetime, config: DetectorConfig
) -> Transition:
    """Apply one observation of a channel at ``now``."""
    if observation.kind is ObservationKind.LIVE and observation.stream is not None:
        transition = _on_live(state, observation.stream, observation.observed_at, now, config)
    elif observation.kind is ObservationKind.OFFLINE:
        transition = _on_offline(state, observation.observed_at, now, config)
    else:
        # Unknown never counts as offline, nor as live: the stored status stays as it is.
        return Transition(state)
    return replace(transition, state=replace(transition.state, last_observed_at=now))


def _on_live(
    state: ChannelState,
    stream: LiveStream,
    observed_at: datetime,
    now: datetime,
    config: DetectorConfig,
) -> Transition:
    if state.stream is not None and state.phase is Phase.GRACE:
        # A comeback inside the grace continues the same stream (DESIGN §3), even when the
        # platform reports a new broadcast after a reconnect: the uptime keeps counting.
        continued = replace(
            stream, stream_id=state.stream.stream_id, started_at=state.stream.started_at
        )
        return _continue_online(state.stream, continued, observed_at)
    if state.stream is not None and state.phase is Phase.LIVE:
        return _continue_online(state.stream, stream, observed_at)
    if state.phase is Phase.PENDING_ONLINE and state.first_sighted_at is not None:
        return _sighted(stream, state.sightings + 1, state.first_sighted_at, observed_at, config)
    return _sighted(stream, 1, now, observed_at, config)


def _sighted(
    stream: LiveStream,
    sightings: int,
    first_sighted_at: datetime,
    observed_at: datetime,
    config: DetectorConfig,
) -> Transition:
    if sightings >= config.confirm_online_sightings:
        live = ChannelState(phase=Phase.LIVE, stream=stream)
        return Transition(live, SetOnline(stream, observed_at), Reason.WENT_ONLINE)
    pending = ChannelState(
        phase=Phase.PENDING_ONLINE,
        stream=stream,
        sightings=sightings,
        first_sighted_at=first_sighted_at,
    )
    return Transition(pending)


def _continue_online(previous: LiveStream, stream: LiveStream, observed_at: datetime) -> Transition:
    """A live sighting while the row shows online; from GRACE this is a comeback."""
    live = ChannelState(phase=Phase.LIVE, stream=stream)
    if stream.stream_id != previous.stream_id:
        # A new broadcast on a channel that never showed offline: new started_at, no went_online.
        return Transition(live, SetOnline(stream, observed_at), Reason.STREAM_UPDATED)
    changed = _details(stream) != _details(previous)
    reason = Reason.STREAM_UPDATED if changed else None
    return Transition(live, UpdateStreamData(stream, observed_at), reason)


def _details(stream: LiveStream) -> tuple[str | None, str | None, int | None]:
    """What a viewer sees change; started_at and stream_id are not details."""
    return stream.title, stream.category, stream.viewers


def _on_offline(
    state: ChannelState, observed_at: datetime, now: datetime, config: DetectorConfig
) -> Transition:
    match state.phase:
        case Phase.NEW | Phase.PENDING_ONLINE:
            # The row may not exist yet (fresh channel), and the channel must not show online.
            return Transition(ChannelState(phase=Phase.OFFLINE), SetOffline(observed_at))
        case Phase.LIVE:
            return Transition(replace(state, phase=Phase.GRACE, grace_since=now))
        case Phase.GRACE if _grace_over(state, now, config):
            offline = ChannelState(phase=Phase.OFFLINE)
            return Transition(offline, SetOffline(observed_at), Reason.WENT_OFFLINE)
        case _:
            return Transition(state)


def _grace_over(state: ChannelState, now: datetime, config: DetectorConfig) -> bool:
    return state.grace_since is not None and now - state.grace_since >= config.grace_period


@dataclass(frozen=True, slots=True)
class PollIntervals:
    """How long to wait before the next poll of a channel, by what the next answer can change."""

    offline: timedelta = timedelta(seconds=60)
    live: timedelta = timedelta(seconds=30)
    # Grace and pending go-live: the next answers decide, and the grace period should see several.
    settling: timedelta = timedelta(seconds=15)


def next_poll_delay(state: ChannelState, intervals: PollIntervals) -> timedelta:
    """The interval until this channel's next poll (backoff after errors is the worker's)."""
    match state.phase:
        case Phase.GRACE | Phase.PENDING_ONLINE:
            return intervals.settling
        case Phase.LIVE:
            return intervals.live
        case _:
            return intervals.offline


# JSON helpers: the column is written only by to_json, but it is read as untrusted data.


def _stream_to_json(stream: LiveStream) -> dict[str, object]:
    return {
        "title": stream.title,
        "category": stream.category,
        "viewers": stream.viewers,
        "started_at": _time_to_json(stream.started_at),
        "stream_id": stream.stream_id,
    }


def _stream_from_json(data: Mapping[str, object]) -> LiveStream:
    return LiveStream(
        title=_optional_text(data, "title"),
        category=_optional_text(data, "category"),
        viewers=_optional_int(data, "viewers"),
        started_at=_time(data, "started_at"),
        stream_id=_text(data, "stream_id"),
    )


def _time_to_json(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _object(value: object, key: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{key} must be an object")
    return value


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _optional_text(data: Mapping[str, object], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _optional_int(data: Mapping[str, object], key: str) -> int | None:
    value = data.get(key)
    # bool is an int to Python, never to this state.
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{key} must be an integer")
    return value


def _count(data: Mapping[str, object], key: str) -> int:
    value = _optional_int(data, key)
    if value is None or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


def _time(data: Mapping[str, object], key: str) -> datetime | None:
    text = _optional_text(data, key)
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{key} must carry a time zone")
    return moment
