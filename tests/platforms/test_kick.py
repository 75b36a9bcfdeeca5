"""The Kick adapter against the strict Kick fake over loopback, and the fake's own strictness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from lumio.dev.fakes.kick import FakeKickState, create_app
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.state import FailureMode, ManualClock
from lumio.kit.settings import KickSettings
from lumio.platforms.base import (
    ChannelNotFound,
    Observation,
    ObservationKind,
    Platform,
    PlatformAdapter,
    PlatformError,
)
from lumio.platforms.kick import (
    KickAdapter,
    kick_observations,
    kick_slug_candidates,
    retry_after_seconds,
)

CLIENT_ID = "kick-test-client"
CLIENT_SECRET = "kick-test-secret"
CHANNELS = "GET /public/v1/channels"
TOKEN = "POST /oauth/token"


def datetime_clock(clock: ManualClock) -> Callable[[], datetime]:
    return lambda: datetime.fromtimestamp(clock(), UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, FakeKickState]]:
    # One server for the module; each test gets it reset (starting uvicorn costs ~0.2 s).
    state = FakeKickState(CLIENT_ID, CLIENT_SECRET)
    with FakeServer(create_app(state)) as url:
        yield url, state


@pytest.fixture
def state(server: tuple[str, FakeKickState], clock: ManualClock) -> FakeKickState:
    fake = server[1]
    fake.reset()
    fake.clock = clock
    return fake


@pytest.fixture
def base_url(server: tuple[str, FakeKickState], state: FakeKickState) -> str:
    return server[0]


def make_adapter(
    base_url: str, clock: ManualClock, timeout: float = 2.0, secret: str = CLIENT_SECRET
) -> KickAdapter:
    config = KickSettings(
        client_id=CLIENT_ID,
        client_secret=secret,
        api_base=base_url,
        id_base=base_url,
        timeout=timeout,
    )
    return KickAdapter(config, clock=datetime_clock(clock))


@pytest.fixture
async def kick(base_url: str, clock: ManualClock) -> AsyncIterator[KickAdapter]:
    adapter = make_adapter(base_url, clock)
    yield adapter
    await adapter.aclose()


def by_id(observations: list[Observation]) -> dict[str, Observation]:
    return {o.channel_id: o for o in observations}


async def test_adapter_satisfies_the_protocol() -> None:
    adapter: PlatformAdapter = KickAdapter(KickSettings(client_id="id", client_secret="secret"))
    assert adapter.platform is Platform.KICK
    assert adapter.batch_size == 50
    await adapter.aclose()


async def test_live_and_offline(
    kick: KickAdapter, state: FakeKickState, clock: ManualClock
) -> None:
    live = state.add_channel("streamer", title="Speedrun", category="Retro", viewers=150, live=True)
    offline = state.add_channel("sleeper", title="old title", category="Just Chatting")
    clock.advance(90)

    seen = by_id((await kick.observe([live.channel_id, offline.channel_id])).observations)

    started = datetime.fromtimestamp(clock() - 90, UTC)
    stream = seen[live.channel_id].stream
    assert seen[live.channel_id].kind is ObservationKind.LIVE
    assert stream is not None
    assert (stream.title, stream.category, stream.viewers) == ("Speedrun", "Retro", 150)
    assert stream.started_at == started
    assert stream.stream_id == f"{live.channel_id}-{int(started.timestamp())}"
    assert seen[live.channel_id].observed_at == datetime.fromtimestamp(clock(), UTC)
    assert seen[offline.channel_id].kind is ObservationKind.OFFLINE
    assert seen[offline.channel_id].stream is None
    assert kick.requests_sent == 2  # one token, one channels request
    assert state.requests(CHANNELS) == 1


async def test_changes_follow_the_channel(
    kick: KickAdapter, state: FakeKickState, clock: ManualClock
) -> None:
    cid = state.add_channel("changer").channel_id
    assert (await kick.observe([cid])).observations[0].kind is ObservationKind.OFFLINE

    state.set_live(cid, title="first", category="Chess", viewers=3)
    first = (await kick.observe([cid])).observations[0].stream
    clock.advance(60)
    state.set_title(cid, "second")
    state.set_category(cid, "Poker", 7)
    state.set_viewers(cid, 42)
    second = (await kick.observe([cid])).observations[0].stream
    assert first is not None
    assert second is not None
    assert (second.title, second.category, second.viewers) == ("second", "Poker", 42)
    # Same broadcast: same start and stream id.
    assert second.stream_id == first.stream_id
    assert second.started_at == first.started_at

    state.set_offline(cid)
    assert (await kick.observe([cid])).observations[0].kind is ObservationKind.OFFLINE
    clock.advance(600)
    state.set_live(cid)
    third = (await kick.observe([cid])).observations[0].stream
    assert third is not None
    assert third.stream_id != first.stream_id


async def test_120_channels_take_three_requests(kick: KickAdapter, state: FakeKickState) -> None:
    ids = [state.add_channel(f"c{i}", live=i % 3 == 0).channel_id for i in range(120)]

    seen = by_id((await kick.observe(ids)).observations)

    assert set(seen) == set(ids)
    assert sum(o.kind is ObservationKind.LIVE for o in seen.values()) == 40
    assert sum(o.kind is ObservationKind.OFFLINE for o in seen.values()) == 80
    assert state.requests(CHANNELS) == 3
    assert state.requests(TOKEN) == 1
    assert kick.requests_sent == 4


async def test_smaller_requests_when_configured(
    base_url: str, clock: ManualClock, state: FakeKickState
) -> None:
    ids = [state.add_channel(f"s{i}").channel_id for i in range(25)]
    config = KickSettings(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_base=base_url,
        id_base=base_url,
        ids_per_request=10,
    )
    adapter = KickAdapter(config, clock=datetime_clock(clock))
    try:
        assert len((await adapter.observe(ids)).observations) == 25
    finally:
        await adapter.aclose()
    assert state.requests(CHANNELS) == 3
    with pytest.raises(ValueError, match="ids_per_request"):
        KickSettings(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, ids_per_request=51)


async def test_token_is_reused(kick: KickAdapter, state: FakeKickState) -> None:
    cid = state.add_channel("reuse").channel_id
    for _ in range(3):
        await kick.observe([cid])
    assert state.requests(TOKEN) == 1
    assert state.requests(CHANNELS) == 3


async def test_revoked_token_is_replaced_without_losing_the_observation(
    kick: KickAdapter, state: FakeKickState
) -> None:
    cid = state.add_channel("revoked", title="on air", live=True).channel_id
    await kick.observe([cid])

    state.expire_tokens()
    observation = (await kick.observe([cid])).observations[0]

    assert observation.kind is ObservationKind.LIVE
    assert observation.stream is not None
    assert observation.stream.title == "on air"
    assert state.requests(TOKEN) == 2
    assert state.requests(CHANNELS) == 3  # first poll, the 401, the retry


async def test_token_is_renewed_before_it_expires(
    kick: KickAdapter, state: FakeKickState, clock: ManualClock
) -> None:
    cid = state.add_channel("renew").channel_id
    await kick.observe([cid])
    clock.advance(state.token_seconds - 30)  # inside the renewal margin, still valid at Kick

    assert (await kick.observe([cid])).observations[0].kind is ObservationKind.OFFLINE
    assert state.requests(TOKEN) == 2
    assert state.requests(CHANNELS) == 2  # no 401 on the way


async def test_persistent_401_is_retried_once(kick: KickAdapter, state: FakeKickState) -> None:
    cid = state.add_channel("denied", live=True).channel_id
    state.fail_next(5, FailureMode.UNAUTHORIZED)

    observation = (await kick.observe([cid])).observations[0]

    assert observation.kind is ObservationKind.UNKNOWN
    assert observation.error_kind == "auth"
    assert state.requests(CHANNELS) == 2
    assert state.requests(TOKEN) == 2


async def test_bad_credentials_make_every_channel_unknown(
    base_url: str, clock: ManualClock, state: FakeKickState
) -> None:
    ids = [state.add_channel(f"b{i}", live=True).channel_id for i in range(60)]
    adapter = make_adapter(base_url, clock, secret="wrong")
    try:
        seen = (await adapter.observe(ids)).observations
    finally:
        await adapter.aclose()
    assert len(seen) == 60
    assert {(o.kind, o.error_kind) for o in seen} == {(ObservationKind.UNKNOWN, "auth")}
    # The second chunk is not sent after the token failed.
    assert state.requests(TOKEN) == 1
    assert state.requests(CHANNELS) == 0


async def test_token_endpoint_outage_is_unknown(kick: KickAdapter, state: FakeKickState) -> None:
    cid = state.add_channel("tokenless", live=True).channel_id
    state.fail_next(1, FailureMode.SERVER_ERROR, path="/oauth/token")

    assert (await kick.observe([cid])).observations[0].error_kind == "http_5xx"
    # The next poll gets a token and sees the channel.
    assert (await kick.observe([cid])).observations[0].kind is ObservationKind.LIVE


@pytest.mark.parametrize(
    ("mode", "error_kind"),
    [
        (FailureMode.RATE_LIMITED, "rate_limited"),
        (FailureMode.SERVER_ERROR, "http_5xx"),
        (FailureMode.GARBAGE, "bad_body"),
        (FailureMode.TIMEOUT, "timeout"),
        (FailureMode.BLOCKED, "blocked"),
        (FailureMode.BLOCKED_HTML, "blocked"),
    ],
)
async def test_failures_are_unknown_never_offline(
    base_url: str, clock: ManualClock, state: FakeKickState, mode: FailureMode, error_kind: str
) -> None:
    live = state.add_channel("live-one", live=True).channel_id
    offline = state.add_channel("offline-one").channel_id
    adapter = make_adapter(base_url, clock, timeout=1.0)
    try:
        state.fail_next(1, mode)
        failed = (await adapter.observe([live, offline])).observations
        recovered = by_id((await adapter.observe([live, offline])).observations)
    finally:
        await adapter.aclose()

    assert {(o.kind, o.error_kind) for o in failed} == {(ObservationKind.UNKNOWN, error_kind)}
    assert all(o.error for o in failed)
    assert recovered[live].kind is ObservationKind.LIVE
    assert recovered[offline].kind is ObservationKind.OFFLINE


async def test_429_honours_retry_after_and_stops_the_batch(
    kick: KickAdapter, state: FakeKickState
) -> None:
    ids = [state.add_channel(f"r{i}", live=True).channel_id for i in range(120)]
    state.retry_after = 17
    state.fail_next(1, FailureMode.RATE_LIMITED)

    seen = (await kick.observe(ids)).observations

    assert len(seen) == 120
    assert {o.error_kind for o in seen} == {"rate_limited"}
    assert kick.rate_limit is not None
    assert kick.rate_limit.retry_after == 17
    assert state.requests(CHANNELS) == 1  # chunks two and three were not sent


async def test_5xx_loses_only_its_own_chunk(kick: KickAdapter, state: FakeKickState) -> None:
    ids = [state.add_channel(f"f{i}").channel_id for i in range(120)]
    state.fail_next(1, FailureMode.SERVER_ERROR)

    seen = by_id((await kick.observe(ids)).observations)

    assert [seen[cid].kind for cid in ids[:50]] == [ObservationKind.UNKNOWN] * 50
    assert [seen[cid].kind for cid in ids[50:]] == [ObservationKind.OFFLINE] * 70
    assert state.requests(CHANNELS) == 3


async def test_unknown_and_deleted_channels_are_reported_alone(
    kick: KickAdapter, state: FakeKickState
) -> None:
    live = state.add_channel("present", live=True).channel_id
    deleted = state.add_channel("deleted", live=True).channel_id
    state.remove_channel(deleted)

    seen = by_id((await kick.observe([live, "999999999", deleted, "not-an-id", live])).observations)

    assert len(seen) == 4
    assert seen[live].kind is ObservationKind.LIVE
    for cid in ("999999999", deleted, "not-an-id"):
        assert (seen[cid].kind, seen[cid].error_kind) == (ObservationKind.UNKNOWN, "not_found")
    assert state.requests(CHANNELS) == 1


async def test_flapping_channel_alternates(kick: KickAdapter, state: FakeKickState) -> None:
    cid = state.add_channel("flappy", live=True).channel_id
    state.set_flapping(cid)
    kinds = [(await kick.observe([cid])).observations[0].kind for _ in range(4)]
    assert kinds == [ObservationKind.LIVE, ObservationKind.OFFLINE] * 2


async def test_empty_batch_sends_nothing(kick: KickAdapter) -> None:
    assert (await kick.observe([])).observations == []
    assert kick.requests_sent == 0


async def test_injected_client_is_left_open(base_url: str, state: FakeKickState) -> None:
    cid = state.add_channel("shared").channel_id
    config = KickSettings(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, api_base=base_url, id_base=base_url
    )
    async with httpx.AsyncClient() as client:
        adapter = KickAdapter(config, client)
        assert (await adapter.observe([cid])).observations[0].kind is ObservationKind.OFFLINE
        await adapter.aclose()
        assert not client.is_closed


# --- resolve -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handle",
    [
        "big_streamer",
        "Big_Streamer",
        "@big-streamer",
        "kick.com/big-streamer",
        "https://www.kick.com/big_streamer/",
    ],
)
async def test_resolve_handles_and_urls(
    kick: KickAdapter, state: FakeKickState, handle: str
) -> None:
    channel = state.add_channel("big-streamer")
    resolved = await kick.resolve(handle)
    assert (resolved.channel_id, resolved.display_name) == (channel.channel_id, "big-streamer")
    assert state.requests(CHANNELS) == 1


@pytest.mark.parametrize("handle", ["nobody-here", "  ", "kick.com/", "bad name!", "x" * 70])
async def test_resolve_unknown_raises_not_found(kick: KickAdapter, handle: str) -> None:
    with pytest.raises(ChannelNotFound):
        await kick.resolve(handle)


async def test_resolve_during_an_outage_raises_platform_error(
    kick: KickAdapter, state: FakeKickState
) -> None:
    state.add_channel("someone")
    state.fail_next(1, FailureMode.SERVER_ERROR)
    with pytest.raises(PlatformError) as caught:
        await kick.resolve("someone")
    assert caught.value.kind == "http_5xx"


def test_slug_candidates_cover_both_separators() -> None:
    assert kick_slug_candidates("a_b-c") == ["a_b-c", "a-b-c", "a_b_c"]
    assert kick_slug_candidates("plain") == ["plain"]


# --- parsing edge cases ---------------------------------------------------------------------------


def kick_entry(cid: int, is_live: bool, start_time: str) -> dict[str, object]:
    stream = {"is_live": is_live, "viewer_count": 5, "start_time": start_time}
    return {"broadcaster_user_id": cid, "slug": f"s{cid}", "stream": stream}


def test_live_with_the_zero_start_time_is_live_without_a_start() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        kick_entry(1, True, "0001-01-01T00:00:00Z"),
        kick_entry(2, False, "0001-01-01T00:00:00Z"),
    ]
    seen = by_id(kick_observations(["1", "2"], entries, now))
    # Issue 9: Kick's 0001-01-01 sentinel is a null start, not a reason to lose the status.
    assert seen["1"].kind is ObservationKind.LIVE
    assert seen["1"].stream is not None and seen["1"].stream.started_at is None
    assert seen["2"].kind is ObservationKind.OFFLINE


def test_an_unreadable_entry_makes_missing_channels_bad_body_not_not_found() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    garbled: dict[str, object] = {"broadcaster_user_id": "garbled"}
    entries = [kick_entry(1, True, "2026-01-01T00:00:00Z"), garbled]
    seen = by_id(kick_observations(["1", "2"], entries, now))
    assert seen["1"].kind is ObservationKind.LIVE
    assert seen["2"].error_kind == "bad_body"


def test_retry_after_accepts_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("12", now) == 12
    later = now + timedelta(seconds=30)
    assert retry_after_seconds(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), now) == 30
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


# --- the fake's strictness and its control interface ------------------------------------------


async def fake_token(client: httpx.AsyncClient) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    response = await client.post("/oauth/token", data=form)
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 7200
    token: str = body["access_token"]
    return token


@pytest.fixture
async def raw(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client


async def test_fake_token_endpoint_is_strict(raw: httpx.AsyncClient) -> None:
    good = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    as_json = await raw.post("/oauth/token", json=good)
    wrong_secret = await raw.post("/oauth/token", data={**good, "client_secret": "nope"})
    wrong_grant = await raw.post("/oauth/token", data={**good, "grant_type": "password"})
    for response in (as_json, wrong_secret, wrong_grant):
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid request"}
    assert (await raw.get("/oauth/token")).status_code == 405


async def test_fake_channels_is_strict(raw: httpx.AsyncClient, state: FakeKickState) -> None:
    known = state.add_channel("known", live=True, title="t", category="c", viewers=9)
    token = await fake_token(raw)
    auth = {"Authorization": f"Bearer {token}"}
    ids = {"broadcaster_user_id": [str(i) for i in range(51)]}

    assert (await raw.get("/public/v1/channels", params={"slug": "known"})).status_code == 401
    bad_token = {"Authorization": "Bearer forged"}
    assert (
        await raw.get("/public/v1/channels", params={"slug": "known"}, headers=bad_token)
    ).status_code == 401
    assert (await raw.get("/public/v1/channels", params=ids, headers=auth)).status_code == 400
    assert (
        await raw.get("/public/v1/channels", params={"broadcaster_user_id": "x"}, headers=auth)
    ).status_code == 400
    assert (await raw.get("/public/v1/channels", headers=auth)).status_code == 400
    mixed = {"slug": "known", "broadcaster_user_id": known.channel_id}
    assert (await raw.get("/public/v1/channels", params=mixed, headers=auth)).status_code == 400

    found = await raw.get(
        "/public/v1/channels", params=[("slug", "known"), ("slug", "ghost")], headers=auth
    )
    body = found.json()
    assert body["message"] == "OK"
    assert [c["slug"] for c in body["data"]] == ["known"]
    entry = body["data"][0]
    assert entry["broadcaster_user_id"] == int(known.channel_id)
    assert entry["stream"]["is_live"] is True
    assert entry["stream"]["viewer_count"] == 9
    assert entry["category"]["name"] == "c"
    missing = await raw.get("/public/v1/channels", params={"slug": "ghost"}, headers=auth)
    assert missing.json() == {"data": [], "message": "OK"}

    state.expire_tokens()
    assert (
        await raw.get("/public/v1/channels", params={"slug": "known"}, headers=auth)
    ).status_code == 401


async def test_fake_livestreams(raw: httpx.AsyncClient, state: FakeKickState) -> None:
    live = state.add_channel("onair", live=True, viewers=10, category="Chess", category_id=3)
    state.add_channel("busy", live=True, viewers=99)
    offline = state.add_channel("quiet")
    auth = {"Authorization": f"Bearer {await fake_token(raw)}"}

    one = await raw.get(
        "/public/v1/livestreams", params={"broadcaster_user_id": live.channel_id}, headers=auth
    )
    assert [s["slug"] for s in one.json()["data"]] == ["onair"]
    assert one.json()["data"][0]["viewer_count"] == 10
    none = await raw.get(
        "/public/v1/livestreams", params={"broadcaster_user_id": offline.channel_id}, headers=auth
    )
    assert none.json() == {"data": [], "message": "OK"}
    top = await raw.get("/public/v1/livestreams", params={"limit": "1"}, headers=auth)
    assert [s["slug"] for s in top.json()["data"]] == ["busy"]
    chess = await raw.get("/public/v1/livestreams", params={"category_id": "3"}, headers=auth)
    assert [s["slug"] for s in chess.json()["data"]] == ["onair"]
    for bad in ({"limit": "0"}, {"limit": "101"}, {"sort": "name"}):
        assert (
            await raw.get("/public/v1/livestreams", params=bad, headers=auth)
        ).status_code == 400


async def test_fake_control_over_http(raw: httpx.AsyncClient, state: FakeKickState) -> None:
    created = await raw.post("/_control/channels", json={"name": "Remote", "title": "hi"})
    assert created.status_code == 201
    cid = created.json()["channel_id"]
    assert (await raw.post("/_control/channels", json={"name": "remote"})).status_code == 409
    assert (await raw.post("/_control/channels", json={"title": "no name"})).status_code == 422

    patched = await raw.patch(
        f"/_control/channels/{cid}", json={"live": True, "viewers": 5, "category": "Art"}
    )
    assert patched.json()["live"] is True
    stored = state.channel(cid)
    assert stored is not None
    assert (stored.live, stored.viewers, stored.category) == (True, 5, "Art")
    assert (await raw.patch(f"/_control/channels/{cid}", json={"viewers": -1})).status_code == 422
    assert (await raw.patch("/_control/channels/1", json={"live": True})).status_code == 404

    assert (
        await raw.post("/_control/failures", json={"mode": "429", "count": 2})
    ).status_code == 204
    assert (await raw.post("/_control/failures", json={"mode": "explode"})).status_code == 422
    assert (await raw.put("/_control/settings", json={"retry_after": 3})).status_code == 204
    auth = {"Authorization": f"Bearer {await fake_token(raw)}"}
    limited = await raw.get("/public/v1/channels", params={"slug": "remote"}, headers=auth)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert (await raw.delete("/_control/failures")).status_code == 204
    assert (
        await raw.get("/public/v1/channels", params={"slug": "remote"}, headers=auth)
    ).status_code == 200

    assert (await raw.post("/_control/tokens/expire")).status_code == 204
    assert (
        await raw.get("/public/v1/channels", params={"slug": "remote"}, headers=auth)
    ).status_code == 401

    stats = (await raw.get("/_control/stats")).json()
    assert stats["requests"] == {"POST /oauth/token": 1, "GET /public/v1/channels": 3}
    assert (await raw.delete("/_control/stats")).status_code == 204
    assert (await raw.get("/_control/stats")).json()["requests"] == {}

    before = state.clock()
    advanced = await raw.post("/_control/clock/advance", json={"seconds": 60})
    assert advanced.json() == {"now": before + 60}
    assert (await raw.delete(f"/_control/channels/{cid}")).status_code == 204
    assert state.channel(cid) is None
    assert (await raw.get(f"/_control/channels/{cid}")).status_code == 404
