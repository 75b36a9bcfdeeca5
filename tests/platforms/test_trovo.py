"""The Trovo adapter against the strict Trovo fake over loopback, and the fake's own strictness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.state import FailureMode, ManualClock
from lumio.dev.fakes.trovo import BLANK_CHANNEL, FakeTrovoState, create_app
from lumio.kit.settings import TrovoSettings
from lumio.platforms.base import (
    ChannelNotFound,
    Observation,
    ObservationKind,
    Platform,
    PlatformAdapter,
    PlatformError,
)
from lumio.platforms.trovo import TrovoAdapter, trovo_username

CLIENT_ID = "trovo-test-client"
CHANNEL = "POST /openplatform/channels/id"
GETUSERS = "POST /openplatform/getusers"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeTrovoState]]:
    # One server for the module; each test gets it reset (starting uvicorn costs ~0.2 s).
    state = FakeTrovoState(CLIENT_ID)
    with FakeServer(create_app(state)) as url:
        yield url, state


@pytest.fixture
def state(server: tuple[str, FakeTrovoState], clock: ManualClock) -> FakeTrovoState:
    fake = server[1]
    fake.reset()
    fake.clock = clock
    return fake


@pytest.fixture
def base_url(server: tuple[str, FakeTrovoState], state: FakeTrovoState) -> str:
    return server[0]


def make_adapter(
    base_url: str,
    clock: ManualClock,
    *,
    timeout: float = 2.0,
    max_concurrency: int = 8,
    client_id: str = CLIENT_ID,
) -> TrovoAdapter:
    config = TrovoSettings(
        client_id=client_id, api_base=base_url, timeout=timeout, max_concurrency=max_concurrency
    )
    return TrovoAdapter(config, clock=lambda: datetime.fromtimestamp(clock(), UTC))


@pytest.fixture
async def trovo(base_url: str, clock: ManualClock) -> AsyncIterator[TrovoAdapter]:
    adapter = make_adapter(base_url, clock)
    yield adapter
    await adapter.aclose()


def by_id(observations: list[Observation]) -> dict[str, Observation]:
    return {o.channel_id: o for o in observations}


async def test_adapter_satisfies_the_protocol() -> None:
    adapter: PlatformAdapter = TrovoAdapter(TrovoSettings(client_id="id"))
    assert adapter.platform is Platform.TROVO
    assert adapter.batch_size == 50
    await adapter.aclose()
    with pytest.raises(ValueError, match="max_concurrency"):
        TrovoSettings(client_id="id", max_concurrency=0)


async def test_live_and_offline(
    trovo: TrovoAdapter, state: FakeTrovoState, clock: ManualClock
) -> None:
    live = state.add_channel(
        "talker", title="hello", category="Just Chatting", viewers=37, live=True
    )
    offline = state.add_channel("napper", title="yesterday")
    clock.advance(45)

    seen = by_id((await trovo.observe([live.channel_id, offline.channel_id])).observations)

    started = datetime.fromtimestamp(clock() - 45, UTC)
    stream = seen[live.channel_id].stream
    assert seen[live.channel_id].kind is ObservationKind.LIVE
    assert stream is not None
    assert (stream.title, stream.category, stream.viewers) == ("hello", "Just Chatting", 37)
    assert stream.started_at == started
    assert stream.stream_id == f"{live.channel_id}-{int(started.timestamp())}"
    assert seen[offline.channel_id].kind is ObservationKind.OFFLINE
    assert trovo.requests_sent == 2
    assert state.requests(CHANNEL) == 2


async def test_changes_follow_the_channel(
    trovo: TrovoAdapter, state: FakeTrovoState, clock: ManualClock
) -> None:
    cid = state.add_channel("mover").channel_id
    assert (await trovo.observe([cid])).observations[0].kind is ObservationKind.OFFLINE

    state.set_live(cid, title="one", category="Chess", viewers=1)
    first = (await trovo.observe([cid])).observations[0].stream
    clock.advance(30)
    state.set_title(cid, "two")
    state.set_category(cid, "Art")
    state.set_viewers(cid, 12)
    second = (await trovo.observe([cid])).observations[0].stream
    assert first is not None
    assert second is not None
    assert (second.title, second.category, second.viewers) == ("two", "Art", 12)
    assert second.stream_id == first.stream_id

    state.set_offline(cid)
    assert (await trovo.observe([cid])).observations[0].kind is ObservationKind.OFFLINE
    clock.advance(300)
    state.set_live(cid)
    third = (await trovo.observe([cid])).observations[0].stream
    assert third is not None
    assert third.stream_id != first.stream_id


async def test_concurrency_is_bounded(
    base_url: str, clock: ManualClock, state: FakeTrovoState
) -> None:
    ids = [state.add_channel(f"c{i}", live=i % 2 == 0).channel_id for i in range(24)]
    state.latency = 0.03
    adapter = make_adapter(base_url, clock, max_concurrency=4)
    try:
        seen = by_id((await adapter.observe(ids)).observations)
    finally:
        await adapter.aclose()

    assert set(seen) == set(ids)
    assert sum(o.kind is ObservationKind.LIVE for o in seen.values()) == 12
    assert state.requests(CHANNEL) == 24
    # Requests did overlap, and never more than four at once.
    assert 1 < state.max_in_flight(CHANNEL) <= 4


async def test_concurrent_batches_share_the_bound(
    base_url: str, clock: ManualClock, state: FakeTrovoState
) -> None:
    ids = [state.add_channel(f"p{i}").channel_id for i in range(12)]
    state.latency = 0.03
    adapter = make_adapter(base_url, clock, max_concurrency=3)
    try:
        results = await asyncio.gather(adapter.observe(ids[:6]), adapter.observe(ids[6:]))
    finally:
        await adapter.aclose()
    assert [len(r.observations) for r in results] == [6, 6]
    assert state.max_in_flight(CHANNEL) <= 3


async def test_unknown_channel_is_reported_alone(
    trovo: TrovoAdapter, state: FakeTrovoState
) -> None:
    live = state.add_channel("here", live=True).channel_id
    gone = state.add_channel("gone").channel_id
    state.remove_channel(gone)

    seen = by_id((await trovo.observe([live, "4242", gone, "no-such-id"])).observations)

    assert seen[live].kind is ObservationKind.LIVE
    for cid in ("4242", gone, "no-such-id"):
        assert (seen[cid].kind, seen[cid].error_kind) == (ObservationKind.UNKNOWN, "not_found")
    assert state.requests(CHANNEL) == 3  # the malformed id is not sent


@pytest.mark.parametrize("http_status", [429, 400, 200])
async def test_rate_limit_body_is_unknown_and_stops_the_batch(
    base_url: str, clock: ManualClock, state: FakeTrovoState, http_status: int
) -> None:
    ids = [state.add_channel(f"r{i}", live=True).channel_id for i in range(5)]
    state.rate_limit_http_status = http_status
    state.fail_next(1, FailureMode.RATE_LIMITED)
    adapter = make_adapter(base_url, clock, max_concurrency=1)
    try:
        seen = (await adapter.observe(ids)).observations
        again = (await adapter.observe(ids)).observations
    finally:
        await adapter.aclose()

    assert {(o.kind, o.error_kind) for o in seen} == {(ObservationKind.UNKNOWN, "rate_limited")}
    assert state.requests(CHANNEL) == 1 + 5  # the rest of the first batch was held back
    assert {o.kind for o in again} == {ObservationKind.LIVE}


@pytest.mark.parametrize(
    ("mode", "error_kind"),
    [
        (FailureMode.SERVER_ERROR, "http_5xx"),
        (FailureMode.GARBAGE, "bad_body"),
        (FailureMode.TIMEOUT, "timeout"),
        (FailureMode.BLOCKED, "blocked"),
        (FailureMode.BLOCKED_HTML, "blocked"),
        (FailureMode.UNAUTHORIZED, "auth"),
    ],
)
async def test_failures_are_unknown_never_offline(
    base_url: str, clock: ManualClock, state: FakeTrovoState, mode: FailureMode, error_kind: str
) -> None:
    offline = state.add_channel("quiet").channel_id
    state.fail_next(1, mode)
    adapter = make_adapter(base_url, clock, timeout=1.0)
    try:
        failed = (await adapter.observe([offline])).observations[0]
        recovered = (await adapter.observe([offline])).observations[0]
    finally:
        await adapter.aclose()

    assert (failed.kind, failed.error_kind) == (ObservationKind.UNKNOWN, error_kind)
    assert failed.error
    assert recovered.kind is ObservationKind.OFFLINE


async def test_a_5xx_costs_only_its_channel(trovo: TrovoAdapter, state: FakeTrovoState) -> None:
    ids = [state.add_channel(f"s{i}").channel_id for i in range(6)]
    state.fail_next(2, FailureMode.SERVER_ERROR)

    seen = (await trovo.observe(ids)).observations

    assert sum(o.error_kind == "http_5xx" for o in seen) == 2
    assert sum(o.kind is ObservationKind.OFFLINE for o in seen) == 4


async def test_wrong_client_id_is_auth(
    base_url: str, clock: ManualClock, state: FakeTrovoState
) -> None:
    cid = state.add_channel("someone", live=True).channel_id
    adapter = make_adapter(base_url, clock, client_id="stranger")
    try:
        observation = (await adapter.observe([cid])).observations[0]
    finally:
        await adapter.aclose()
    assert (observation.kind, observation.error_kind) == (ObservationKind.UNKNOWN, "auth")


async def test_flapping_channel_alternates(trovo: TrovoAdapter, state: FakeTrovoState) -> None:
    cid = state.add_channel("flicker", live=True).channel_id
    state.set_flapping(cid)
    kinds = [(await trovo.observe([cid])).observations[0].kind for _ in range(4)]
    assert kinds == [ObservationKind.LIVE, ObservationKind.OFFLINE] * 2


# --- resolve -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handle", ["TheName", "@thename", "trovo.live/s/TheName", "https://trovo.live/thename/"]
)
async def test_resolve(trovo: TrovoAdapter, state: FakeTrovoState, handle: str) -> None:
    channel = state.add_channel("thename", display_name="The Name")
    resolved = await trovo.resolve(handle)
    assert (resolved.channel_id, resolved.display_name) == (channel.channel_id, "The Name")
    assert state.requests(GETUSERS) == 1


@pytest.mark.parametrize("handle", ["nobody", "trovo.live/s/", "two words", ""])
async def test_resolve_unknown_raises_not_found(trovo: TrovoAdapter, handle: str) -> None:
    with pytest.raises(ChannelNotFound):
        await trovo.resolve(handle)


async def test_resolve_during_rate_limit_raises_platform_error(
    trovo: TrovoAdapter, state: FakeTrovoState
) -> None:
    state.add_channel("busy")
    state.fail_next(1, FailureMode.RATE_LIMITED, path="/openplatform/getusers")
    with pytest.raises(PlatformError) as caught:
        await trovo.resolve("busy")
    assert caught.value.kind == "rate_limited"


def test_username_from_urls() -> None:
    assert trovo_username("https://www.trovo.live/s/Some_One/123") == "Some_One"
    assert trovo_username(" @Some_One ") == "Some_One"


# --- the fake's strictness and its control interface ------------------------------------------


@pytest.fixture
async def raw(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, headers={"Client-ID": CLIENT_ID}) as client:
        yield client


async def test_fake_channel_endpoint_is_strict(
    raw: httpx.AsyncClient, state: FakeTrovoState
) -> None:
    channel = state.add_channel("strict", live=True, title="t", category="c", viewers=4)
    path = "/openplatform/channels/id"

    no_client = await raw.post(
        path, json={"channel_id": channel.channel_id}, headers={"Client-ID": ""}
    )
    assert (no_client.status_code, no_client.json()["status"]) == (400, 11701)
    as_form = await raw.post(path, data={"channel_id": channel.channel_id})
    assert (as_form.status_code, as_form.json()["status"]) == (400, 1002)
    for bad in ({}, {"channel_id": 5}, {"channel_id": "x1"}, {"channel_id": "1", "username": "a"}):
        assert (await raw.post(path, json=bad)).status_code == 400
    assert (await raw.get(path)).status_code == 405

    found = (await raw.post(path, json={"channel_id": channel.channel_id})).json()
    assert found["is_live"] is True
    assert (found["username"], found["live_title"], found["current_viewers"]) == ("strict", "t", 4)
    assert found["started_at"] == str(int(state.clock()))
    by_name = (await raw.post(path, json={"username": "STRICT"})).json()
    assert by_name["username"] == "strict"
    unknown = await raw.post(path, json={"channel_id": "1"})
    assert (unknown.status_code, unknown.json()) == (200, BLANK_CHANNEL)


async def test_fake_getusers(raw: httpx.AsyncClient, state: FakeTrovoState) -> None:
    one = state.add_channel("first", display_name="First!")
    state.add_channel("second")
    path = "/openplatform/getusers"

    both = (await raw.post(path, json={"user": ["first", "Second"]})).json()
    assert both["total"] == 2
    assert both["users"][0] == {
        "user_id": one.channel_id,
        "username": "first",
        "nickname": "First!",
        "channel_id": one.channel_id,
    }
    # One unknown name empties the whole answer.
    assert (await raw.post(path, json={"user": ["first", "ghost"]})).json() == {
        "total": 0,
        "users": [],
    }
    bad_bodies: list[dict[str, object]] = [
        {"user": []},
        {"user": "first"},
        {"users": ["first"]},
        {"user": ["a"] * 101},
    ]
    for bad in bad_bodies:
        assert (await raw.post(path, json=bad)).status_code == 400


async def test_fake_control_over_http(raw: httpx.AsyncClient, state: FakeTrovoState) -> None:
    created = await raw.post("/_control/channels", json={"name": "remote", "channel_id": "777"})
    assert created.status_code == 201
    assert (
        await raw.patch("/_control/channels/777", json={"live": True, "title": "x"})
    ).status_code == 200
    assert (await raw.put("/_control/settings", json={"latency": 0.01})).status_code == 204
    assert state.latency == 0.01
    assert (
        await raw.post(
            "/_control/failures", json={"mode": "5xx", "path": "/openplatform/channels/id"}
        )
    ).status_code == 204

    failed = await raw.post("/openplatform/channels/id", json={"channel_id": "777"})
    assert (failed.status_code, failed.json()["status"]) == (500, -1000)
    live = (await raw.post("/openplatform/channels/id", json={"channel_id": "777"})).json()
    assert (live["is_live"], live["live_title"]) == (True, "x")

    channels = (await raw.get("/_control/channels")).json()
    assert [(c["channel_id"], c["live"]) for c in channels] == [("777", True)]
    stats = (await raw.get("/_control/stats")).json()
    assert stats["requests"] == {CHANNEL: 2}
    assert stats["max_in_flight"] == {CHANNEL: 1}
    assert (await raw.post("/_control/reset")).status_code == 204
    assert state.channels() == []


async def test_fake_clock_control_needs_a_manual_clock(
    raw: httpx.AsyncClient, state: FakeTrovoState
) -> None:
    state.clock = time.time
    refused = await raw.post("/_control/clock/advance", json={"seconds": 5})
    assert refused.status_code == 409
