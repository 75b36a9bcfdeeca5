"""The live/offline state machine, driven by a fake clock: scenarios, then properties."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumio.channel_status.schemas import OfflineWrite, OnlineWrite, StreamDataWrite
from lumio.detection.state_machine import (
    ChannelState,
    Decision,
    DetectorConfig,
    Phase,
    PollIntervals,
    SetOffline,
    SetOnline,
    Transition,
    UpdateStreamData,
    next_poll_delay,
    step,
    to_write,
)
from lumio.events.schemas import Reason
from lumio.platforms.base import LiveStream, Observation, ObservationKind, Platform

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
STARTED = T0 - timedelta(minutes=3)
ACCOUNT = UUID("00000000-0000-4000-8000-000000000001")
GRACE_120 = DetectorConfig()
CONFIRM_2 = DetectorConfig(confirm_online_sightings=2)

ONLINE = Reason.WENT_ONLINE
OFFLINE = Reason.WENT_OFFLINE
UPDATED = Reason.STREAM_UPDATED


# --- building observations ---------------------------------------------------------------------


@dataclass(frozen=True)
class See:
    """One poll answer: what the platform said, ``at`` seconds after T0."""

    at: float
    kind: ObservationKind
    title: str = "Hello"
    category: str = "Just Chatting"
    viewers: int = 10
    stream_id: str = "s1"

    def observation(self) -> Observation:
        stream = None
        if self.kind is ObservationKind.LIVE:
            stream = LiveStream(self.title, self.category, self.viewers, STARTED, self.stream_id)
        return Observation("chan", self.kind, self.now, stream)

    @property
    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.at)


def live(
    at: float,
    title: str = "Hello",
    category: str = "Just Chatting",
    viewers: int = 10,
    stream_id: str = "s1",
) -> See:
    return See(at, ObservationKind.LIVE, title, category, viewers, stream_id)


def offline(at: float) -> See:
    return See(at, ObservationKind.OFFLINE)


def unknown(at: float) -> See:
    return See(at, ObservationKind.UNKNOWN)


# What one step produced, compactly: the kind of write (or None) and the event reason (or None).
Outcome = tuple[type[Decision] | None, Reason | None]


def run(
    sees: Iterable[See], config: DetectorConfig = GRACE_120, state: ChannelState | None = None
) -> tuple[list[Outcome], ChannelState]:
    state = ChannelState() if state is None else state
    outcomes: list[Outcome] = []
    for see in sees:
        transition = step(state, see.observation(), see.now, config)
        decision = None if transition.decision is None else type(transition.decision)
        outcomes.append((decision, transition.reason))
        state = transition.state
    return outcomes, state


NOTHING: Outcome = (None, None)
GO_LIVE: Outcome = (SetOnline, ONLINE)
REFRESH: Outcome = (UpdateStreamData, None)
UPDATE: Outcome = (UpdateStreamData, UPDATED)
END: Outcome = (SetOffline, OFFLINE)
ROW_OFFLINE: Outcome = (SetOffline, None)


# --- scenarios ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    sees: tuple[See, ...]
    expected: tuple[Outcome, ...]
    phase: Phase
    config: DetectorConfig = field(default=GRACE_120)


SCENARIOS = {
    "fresh channel offline writes the row once": Scenario(
        (offline(0), offline(30), offline(60)), (ROW_OFFLINE, NOTHING, NOTHING), Phase.OFFLINE
    ),
    "go live": Scenario((offline(0), live(30)), (ROW_OFFLINE, GO_LIVE), Phase.LIVE),
    "fresh channel already live": Scenario((live(0),), (GO_LIVE,), Phase.LIVE),
    "same details refresh the row without an event": Scenario(
        (live(0), live(30), live(60)), (GO_LIVE, REFRESH, REFRESH), Phase.LIVE
    ),
    "title change": Scenario(
        (live(0), live(30, title="New"), live(60, title="New")),
        (GO_LIVE, UPDATE, REFRESH),
        Phase.LIVE,
    ),
    "category change": Scenario(
        (live(0), live(30, category="Chess"), live(60, category="Chess")),
        (GO_LIVE, UPDATE, REFRESH),
        Phase.LIVE,
    ),
    "viewer change": Scenario(
        (live(0), live(30, viewers=11), live(60, viewers=11)),
        (GO_LIVE, UPDATE, REFRESH),
        Phase.LIVE,
    ),
    "a 60 s drop inside a 120 s grace": Scenario(
        (live(0), offline(30), offline(60), offline(90), live(120), live(150)),
        (GO_LIVE, NOTHING, NOTHING, NOTHING, REFRESH, REFRESH),
        Phase.LIVE,
    ),
    "a real end: offline only once the grace has elapsed": Scenario(
        (live(0), offline(30), offline(90), offline(149), offline(150), offline(180)),
        (GO_LIVE, NOTHING, NOTHING, NOTHING, END, NOTHING),
        Phase.OFFLINE,
    ),
    "comeback inside the grace with new details": Scenario(
        (live(0), offline(30), live(60, title="Back")),
        (GO_LIVE, NOTHING, UPDATE),
        Phase.LIVE,
    ),
    "a comeback resets the grace": Scenario(
        (live(0), offline(30), live(60), offline(90), offline(180), offline(210)),
        (GO_LIVE, NOTHING, REFRESH, NOTHING, NOTHING, END),
        Phase.OFFLINE,
    ),
    "unknown while live changes nothing": Scenario(
        (live(0), unknown(30), unknown(60), unknown(600), live(630)),
        (GO_LIVE, NOTHING, NOTHING, NOTHING, REFRESH),
        Phase.LIVE,
    ),
    "unknown during the grace neither ends nor extends it": Scenario(
        (live(0), offline(30), unknown(60), unknown(150), unknown(300), offline(310)),
        (GO_LIVE, NOTHING, NOTHING, NOTHING, NOTHING, END),
        Phase.OFFLINE,
    ),
    "unknown after the grace, then a comeback: the same stream goes on": Scenario(
        (live(0), offline(30), unknown(200), live(230)),
        (GO_LIVE, NOTHING, NOTHING, REFRESH),
        Phase.LIVE,
    ),
    "unknown on a fresh channel writes nothing": Scenario(
        (unknown(0), unknown(30)), (NOTHING, NOTHING), Phase.NEW
    ),
    "unknown while offline writes nothing": Scenario(
        (offline(0), unknown(30)), (ROW_OFFLINE, NOTHING), Phase.OFFLINE
    ),
    "restart after the grace ended is a new go-live": Scenario(
        (live(0), offline(30), offline(150), live(180, stream_id="s2")),
        (GO_LIVE, NOTHING, END, GO_LIVE),
        Phase.LIVE,
    ),
    "new stream id while live: set_online without went_online": Scenario(
        (live(0), live(30, stream_id="s2")), (GO_LIVE, (SetOnline, UPDATED)), Phase.LIVE
    ),
    "new stream id inside the grace: the same stream continues": Scenario(
        (live(0), offline(30), live(60, stream_id="s2")),
        (GO_LIVE, NOTHING, REFRESH),
        Phase.LIVE,
    ),
    "confirm=2: a go-live flap never goes online": Scenario(
        (offline(0), live(30), offline(60), live(90), offline(120)),
        (ROW_OFFLINE, NOTHING, ROW_OFFLINE, NOTHING, ROW_OFFLINE),
        Phase.OFFLINE,
        CONFIRM_2,
    ),
    "confirm=2: the second sighting goes online": Scenario(
        (offline(0), live(30), live(60), live(90)),
        (ROW_OFFLINE, NOTHING, GO_LIVE, REFRESH),
        Phase.LIVE,
        CONFIRM_2,
    ),
    "confirm=2: unknown between sightings keeps the first one": Scenario(
        (live(0), unknown(30), live(60)), (NOTHING, NOTHING, GO_LIVE), Phase.LIVE, CONFIRM_2
    ),
    "confirm=2: a fresh channel that flaps still gets its row": Scenario(
        (live(0), offline(30)), (NOTHING, ROW_OFFLINE), Phase.OFFLINE, CONFIRM_2
    ),
    "zero grace: offline at the second offline sighting": Scenario(
        (live(0), offline(30), offline(31)),
        (GO_LIVE, NOTHING, END),
        Phase.OFFLINE,
        DetectorConfig(grace_period=timedelta(0)),
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_scenario(scenario: Scenario) -> None:
    outcomes, state = run(scenario.sees, scenario.config)
    assert outcomes == list(scenario.expected)
    assert state.phase is scenario.phase


def test_grace_keeps_the_stream_and_its_start() -> None:
    _, state = run([live(0), offline(30), offline(60)])
    assert state.phase is Phase.GRACE
    assert state.grace_since == T0 + timedelta(seconds=30)
    assert state.stream is not None
    assert state.stream.stream_id == "s1"


def test_pending_remembers_the_first_sighting() -> None:
    _, state = run([offline(0), live(30), unknown(45)], CONFIRM_2)
    assert (state.phase, state.sightings) == (Phase.PENDING_ONLINE, 1)
    assert state.first_sighted_at == T0 + timedelta(seconds=30)


def test_unknown_returns_the_state_untouched() -> None:
    _, before = run([live(0), offline(30)])
    transition = step(before, unknown(60).observation(), unknown(60).now, GRACE_120)
    assert transition == Transition(before)


def test_live_without_stream_details_is_unknown() -> None:
    _, before = run([live(0)])
    malformed = Observation("chan", ObservationKind.LIVE, T0, stream=None)
    assert step(before, malformed, T0, GRACE_120) == Transition(before)


def test_writes_carry_the_observation_time_and_details() -> None:
    see = live(30, title="Hi", viewers=7)
    observation = see.observation()
    transition = step(ChannelState(), observation, see.now + timedelta(seconds=2), GRACE_120)
    assert transition.write_for(ACCOUNT, Platform.KICK) == OnlineWrite(
        ACCOUNT, Platform.KICK, "Hi", "Just Chatting", 7, STARTED, observation.observed_at
    )
    assert transition.state.last_observed_at == see.now + timedelta(seconds=2)


def test_to_write_builds_each_write() -> None:
    stream = LiveStream("t", "c", 3, STARTED, "s1")
    assert to_write(SetOffline(T0), ACCOUNT, Platform.TWITCH) == OfflineWrite(
        ACCOUNT, Platform.TWITCH, T0
    )
    assert to_write(UpdateStreamData(stream, T0), ACCOUNT, Platform.YOUTUBE) == StreamDataWrite(
        ACCOUNT, Platform.YOUTUBE, "t", "c", 3, T0
    )
    assert Transition(ChannelState()).write_for(ACCOUNT, Platform.TROVO) is None


# --- restart resume and the JSON column ---------------------------------------------------------


def through_json(state: ChannelState) -> ChannelState:
    """What the worker gets back from the PostgreSQL JSON column."""
    return ChannelState.from_json(orjson.loads(orjson.dumps(state.to_json())))


def test_restart_resume_while_live_emits_no_went_online() -> None:
    _, state = run([offline(0), live(30)])
    outcomes, state = run([live(60), live(90, viewers=99)], state=through_json(state))
    assert outcomes == [REFRESH, UPDATE]
    assert state.phase is Phase.LIVE


def test_restart_resume_inside_the_grace_keeps_its_start() -> None:
    _, state = run([live(0), offline(30)])
    outcomes, _ = run([offline(100), offline(150)], state=through_json(state))
    assert outcomes == [NOTHING, END]


def test_restart_resume_while_pending_keeps_the_sighting() -> None:
    _, state = run([live(0)], CONFIRM_2)
    outcomes, _ = run([live(30)], CONFIRM_2, state=through_json(state))
    assert outcomes == [GO_LIVE]


def test_empty_json_is_a_fresh_channel() -> None:
    assert ChannelState.from_json({}) == ChannelState()


@pytest.mark.parametrize(
    "data",
    [
        {"v": 2, "phase": "offline"},
        {"v": 1, "phase": "sleeping", "sightings": 0},
        {"v": 1, "phase": "live", "stream": None, "sightings": 0},
        {"v": 1, "phase": "offline", "sightings": True},
        {"v": 1, "phase": "offline", "sightings": 0, "last_observed_at": "2026-11-28T07:00:00"},
        {"v": 1, "phase": "grace", "stream": "s1", "grace_since": "2026-11-28T07:00:00+00:00"},
    ],
)
def test_malformed_json_is_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every malformed column is a ValueError
        ChannelState.from_json(data)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="confirm_online_sightings"):
        DetectorConfig(confirm_online_sightings=0)
    with pytest.raises(ValueError, match="grace_period"):
        DetectorConfig(grace_period=timedelta(seconds=-1))


# --- poll intervals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sees", "config", "expected"),
    [
        ([], GRACE_120, "offline"),
        ([offline(0)], GRACE_120, "offline"),
        ([live(0)], GRACE_120, "live"),
        ([live(0), offline(30)], GRACE_120, "settling"),
        ([offline(0), live(30)], CONFIRM_2, "settling"),
    ],
    ids=["fresh", "offline", "live", "grace", "pending"],
)
def test_next_poll_delay(sees: list[See], config: DetectorConfig, expected: str) -> None:
    intervals = PollIntervals(
        offline=timedelta(seconds=60), live=timedelta(seconds=30), settling=timedelta(seconds=10)
    )
    _, state = run(sees, config)
    assert next_poll_delay(state, intervals) == getattr(intervals, expected)


def test_default_intervals_poll_live_and_grace_more_often() -> None:
    intervals = PollIntervals()
    assert intervals.settling < intervals.live < intervals.offline
    assert intervals.settling * 4 <= GRACE_120.grace_period


# --- properties over random observation sequences ----------------------------------------------

KINDS = st.sampled_from(list(ObservationKind))


@st.composite
def sees(draw: st.DrawFn) -> list[See]:
    gaps = draw(st.lists(st.integers(min_value=0, max_value=90), min_size=1, max_size=40))
    at = 0
    result: list[See] = []
    for gap in gaps:
        at += gap
        result.append(
            See(
                at,
                draw(KINDS),
                title=draw(st.sampled_from(["a", "b"])),
                viewers=draw(st.integers(min_value=0, max_value=2)),
                stream_id=draw(st.sampled_from(["s1", "s1", "s2"])),
            )
        )
    return result


CONFIGS = st.builds(
    DetectorConfig,
    grace_period=st.sampled_from([timedelta(0), timedelta(seconds=60), timedelta(seconds=120)]),
    confirm_online_sightings=st.integers(min_value=1, max_value=2),
)


@dataclass
class RowModel:
    """What the channel_status row shows, and what the checks need to remember."""

    online: bool = False
    last_edge: Reason | None = None
    # When the first offline observation after the last live one was seen.
    offline_since: datetime | None = None

    def observe(self, see: See) -> None:
        if see.kind is ObservationKind.LIVE:
            self.offline_since = None
        elif see.kind is ObservationKind.OFFLINE and self.offline_since is None:
            self.offline_since = see.now


def check(model: RowModel, see: See, transition: Transition, config: DetectorConfig) -> None:
    decision, reason = transition.decision, transition.reason
    if see.kind is ObservationKind.UNKNOWN:
        # (b) an unknown never writes at all, so never an OfflineWrite.
        assert (decision, reason) == (None, None)
    if reason in (ONLINE, OFFLINE):
        # (a) went_online and went_offline alternate strictly, starting with went_online.
        assert reason is not model.last_edge
        assert reason is ONLINE or model.last_edge is ONLINE
        model.last_edge = reason
    if isinstance(decision, SetOffline) and model.online:
        # (c) taking a live row offline: a fresh offline observation, offline for the grace.
        assert see.kind is ObservationKind.OFFLINE
        assert model.offline_since is not None
        assert see.now - model.offline_since >= config.grace_period
        assert reason is OFFLINE
    if isinstance(decision, UpdateStreamData):
        assert model.online
    if decision is not None:
        model.online = not isinstance(decision, SetOffline)
    assert (transition.state.phase in {Phase.LIVE, Phase.GRACE}) == model.online


@settings(database=None, max_examples=300)
@given(sequence=sees(), config=CONFIGS, resume_every=st.integers(min_value=1, max_value=5))
def test_properties_over_random_sequences(
    sequence: list[See], config: DetectorConfig, resume_every: int
) -> None:
    model = RowModel()
    state = ChannelState()
    for index, see in enumerate(sequence):
        model.observe(see)
        transition = step(state, see.observation(), see.now, config)
        check(model, see, transition, config)
        state = transition.state
        # A worker restart between any two polls must not change what happens next.
        if index % resume_every == 0:
            assert through_json(state) == state
            state = through_json(state)
