"""The YouTube adapter against the strict YouTube fake, over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.youtube import FailMode, FakeYouTubeState, create_app
from lumio.kit.settings import YouTubeSettings
from lumio.platforms.base import (
    ChannelNotFound,
    LiveStream,
    Observation,
    ObservationKind,
    PlatformError,
    ResolvedChannel,
)
from lumio.platforms.youtube import YouTubeAdapter, parse_feed

KEY = "test-key"
T0 = datetime(2026, 9, 1, 18, 0, tzinfo=UTC)
LIVE, OFFLINE, UNKNOWN = ObservationKind.LIVE, ObservationKind.OFFLINE, ObservationKind.UNKNOWN
# Long enough that a client with TIMEOUT gives up first, short enough to keep the server's
# shutdown (which waits for the hanging request) quick.
TIMEOUT, HANG = 1.0, 2.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(clock: Clock) -> FakeYouTubeState:
    return FakeYouTubeState(clock=clock, api_key=KEY)


class SwappableApp:
    """One loopback server for the module; each test plugs in an app over its own fake state."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SwappableApp, str]]:
    # Starting and stopping uvicorn per test would cost more than most tests take.
    holder = SwappableApp()
    with FakeServer(holder) as url:
        yield holder, url


@pytest.fixture
def fake_url(server: tuple[SwappableApp, str], state: FakeYouTubeState) -> Iterator[str]:
    holder, url = server
    holder.app = create_app(state)
    yield url
    holder.app = None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


AdapterFactory = Callable[..., YouTubeAdapter]


@pytest.fixture
def make_adapter(http: httpx.AsyncClient, fake_url: str, clock: Clock) -> AdapterFactory:
    def make(**overrides: Any) -> YouTubeAdapter:
        base = {"api_key": KEY, "api_base": fake_url, "feed_base": fake_url, "timeout": TIMEOUT}
        return YouTubeAdapter(http, YouTubeSettings.model_validate(base | overrides), clock=clock)

    return make


@pytest.fixture
def adapter(make_adapter: AdapterFactory) -> YouTubeAdapter:
    return make_adapter()


async def observe_one(
    adapter: YouTubeAdapter, channel_id: str, live_streams: dict[str, str] | None = None
) -> Observation:
    [observation] = (await adapter.observe([channel_id], live_streams or {})).observations
    assert observation.channel_id == channel_id
    return observation


async def observe_all(adapter: YouTubeAdapter, channel_ids: list[str]) -> dict[str, Observation]:
    observations = (await adapter.observe(channel_ids)).observations
    assert sorted(o.channel_id for o in observations) == sorted(set(channel_ids))
    return {o.channel_id: o for o in observations}


def old_channel(state: FakeYouTubeState, clock: Clock, **kwargs: str) -> str:
    """A channel whose feed holds only an upload from long ago."""
    channel = state.add_channel(**kwargs)
    state.upload(channel.channel_id, "Old upload", published_at=clock.now - timedelta(days=30))
    return channel.channel_id


def video_calls(state: FakeYouTubeState) -> int:
    return state.requests["videos"]


# --- live detection ---


async def test_going_live_changing_and_ending(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE

    clock.advance(minutes=1)
    video = state.go_live(channel_id, title="Speedrun", viewers=842, category_id="20")
    clock.advance(seconds=30)
    live = await observe_one(adapter, channel_id)
    assert live.kind is LIVE
    assert live.stream == LiveStream(
        "Speedrun", "Gaming", 842, T0 + timedelta(minutes=1), video.video_id
    )
    assert live.observed_at == clock.now

    state.update_video(video.video_id, title="Speedrun, part 2", viewers=1500, category_id="24")
    changed = await observe_one(adapter, channel_id)
    assert changed.stream == LiveStream(
        "Speedrun, part 2", "Entertainment", 1500, T0 + timedelta(minutes=1), video.video_id
    )

    state.end_stream(channel_id)
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    assert state.requests["search"] == 0


async def test_hidden_viewer_count_is_none_not_zero(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    state.go_live(channel_id, viewers=None)
    observation = await observe_one(adapter, channel_id)
    assert observation.kind is LIVE
    assert observation.stream is not None
    assert observation.stream.viewers is None


async def test_live_video_stays_confirmed_when_the_feed_lags(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    video = state.go_live(channel_id, title="Marathon")
    assert (await observe_one(adapter, channel_id)).kind is LIVE

    state.update_video(video.video_id, in_feed=False)
    still = await observe_one(adapter, channel_id)
    assert still.kind is LIVE
    assert still.stream is not None
    assert still.stream.stream_id == video.video_id

    state.end_stream(channel_id)
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE


async def test_scheduled_stream_is_not_live_until_it_starts(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    scheduled = state.schedule_stream(channel_id, clock.now + timedelta(minutes=10), "Premiere")
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE

    clock.advance(minutes=9)
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE

    clock.advance(minutes=2)
    state.go_live(channel_id, video_id=scheduled.video_id, viewers=12)
    live = await observe_one(adapter, channel_id)
    assert live.kind is LIVE
    assert live.stream is not None
    assert (live.stream.stream_id, live.stream.title, live.stream.viewers) == (
        scheduled.video_id,
        "Premiere",
        12,
    )


async def test_far_scheduled_stream_is_confirmed_only_when_due(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    state.schedule_stream(channel_id, clock.now + timedelta(days=2))
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    assert video_calls(state) == 1

    clock.advance(minutes=5)
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    assert video_calls(state) == 1

    clock.advance(minutes=30)
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    assert video_calls(state) == 2


async def test_ended_stream_and_plain_upload_are_offline(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = state.add_channel().channel_id
    clock.advance(hours=-3)
    state.go_live(channel_id, title="Yesterday's stream", viewers=50)
    clock.advance(hours=2)
    state.end_stream(channel_id)
    state.upload(channel_id, "Highlights")
    clock.advance(hours=1)

    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    # Both recent entries were really asked about, once.
    assert state.video_batch_sizes == [2]
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    assert state.video_batch_sizes == [2]


async def test_two_streams_at_once_report_the_newest(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    state.go_live(channel_id, title="24/7 radio")
    clock.advance(minutes=5)
    event = state.go_live(channel_id, title="Launch event")
    live = await observe_one(adapter, channel_id)
    assert live.stream is not None
    assert live.stream.stream_id == event.video_id


async def test_remembered_live_video_is_confirmed_by_a_fresh_adapter(
    make_adapter: AdapterFactory, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    clock.advance(days=-5)
    video = state.go_live(channel_id, title="Always on")
    clock.advance(days=5)

    fresh = make_adapter()
    live = await observe_one(fresh, channel_id, {channel_id: video.video_id})
    assert live.kind is LIVE
    assert live.stream is not None
    assert live.stream.started_at == T0 - timedelta(days=5)


# --- errors ---


async def test_quota_exhausted_is_unknown_never_offline(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    streaming = old_channel(state, clock)
    state.go_live(streaming)
    assert (await observe_one(adapter, streaming)).kind is LIVE

    uploader = state.add_channel().channel_id
    state.upload(uploader, "Brand new")
    state.exhaust_quota()
    observations = await observe_all(adapter, [streaming, uploader])
    for observation in observations.values():
        assert observation.kind is UNKNOWN
        assert observation.error_kind == "quota_exhausted"
    assert adapter.rate_limit is not None
    assert adapter.rate_limit.remaining == 0
    assert adapter.rate_limit.reset_at is not None
    assert adapter.rate_limit.reset_at > clock.now.timestamp()

    state.reset_quota()
    observations = await observe_all(adapter, [streaming, uploader])
    assert (observations[streaming].kind, observations[uploader].kind) == (LIVE, OFFLINE)
    assert adapter.rate_limit is None


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("5xx", "http_5xx"), ("429", "rate_limited"), ("garbage", "bad_body"), ("timeout", "timeout")],
)
async def test_failed_confirmation_is_unknown(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock, mode: FailMode, kind: str
) -> None:
    channel_id = old_channel(state, clock)
    state.go_live(channel_id)
    assert (await observe_one(adapter, channel_id)).kind is LIVE

    state.fail_next(1, mode, endpoint="videos", hang_seconds=HANG)
    failed = await observe_one(adapter, channel_id)
    assert (failed.kind, failed.error_kind) == (UNKNOWN, kind)
    assert (await observe_one(adapter, channel_id)).kind is LIVE


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("5xx", "http_5xx"), ("429", "rate_limited"), ("garbage", "bad_body"), ("timeout", "timeout")],
)
async def test_failed_feed_is_unknown_for_its_channel_only(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock, mode: FailMode, kind: str
) -> None:
    streaming, quiet, broken = (old_channel(state, clock) for _ in range(3))
    state.go_live(streaming)
    state.fail_next(1, mode, endpoint="feed", channel_id=broken, hang_seconds=HANG)

    observations = await observe_all(adapter, [streaming, quiet, broken])
    assert observations[streaming].kind is LIVE
    assert observations[quiet].kind is OFFLINE
    assert (observations[broken].kind, observations[broken].error_kind) == (UNKNOWN, kind)


async def test_failed_feed_of_a_live_channel_still_confirms_its_stream(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = old_channel(state, clock)
    state.go_live(channel_id)
    assert (await observe_one(adapter, channel_id)).kind is LIVE

    state.fail_next(1, "5xx", endpoint="feed")
    assert (await observe_one(adapter, channel_id)).kind is LIVE

    # Ended, but another video might be live in the feed we could not read: not offline.
    state.end_stream(channel_id)
    state.fail_next(1, "5xx", endpoint="feed")
    ended = await observe_one(adapter, channel_id)
    assert (ended.kind, ended.error_kind) == (UNKNOWN, "http_5xx")
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE


async def test_unknown_and_deleted_channels_are_reported_without_failing_the_others(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    streaming = old_channel(state, clock)
    state.go_live(streaming)
    deleted = old_channel(state, clock)
    state.remove_channel(deleted)
    unknown = "UC" + "x" * 22

    observations = await observe_all(adapter, [unknown, streaming, deleted])
    assert observations[streaming].kind is LIVE
    for channel_id in (unknown, deleted):
        assert (observations[channel_id].kind, observations[channel_id].error_kind) == (
            UNKNOWN,
            "not_found",
        )


async def test_uploads_playlist_stands_in_for_a_failed_feed(
    make_adapter: AdapterFactory, state: FakeYouTubeState, clock: Clock
) -> None:
    adapter = make_adapter(uploads_fallback=True)
    channel_id = old_channel(state, clock)
    video = state.go_live(channel_id)
    state.fail_next(1, "5xx", endpoint="feed", channel_id=channel_id)

    live = await observe_one(adapter, channel_id)
    assert live.kind is LIVE
    assert live.stream is not None
    assert live.stream.stream_id == video.video_id
    assert state.requests["playlistItems"] == 1
    assert adapter.quota_used == state.stats().quota_used == 2


# --- cost ---


async def test_videos_calls_carry_at_most_50_ids(
    adapter: YouTubeAdapter, state: FakeYouTubeState
) -> None:
    channel_ids = [state.add_channel().channel_id for _ in range(30)]
    for channel_id in channel_ids:
        for n in range(3):
            state.upload(channel_id, f"Fresh upload {n}")

    observations = await observe_all(adapter, channel_ids)
    assert {o.kind for o in observations.values()} == {OFFLINE}
    assert state.video_batch_sizes == [50, 40]
    assert adapter.quota_used == state.stats().quota_used == 2
    assert adapter.requests_sent == 30 + 2


async def test_steady_state_costs_at_most_one_confirmation_per_50_channels(
    adapter: YouTubeAdapter, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_ids = [old_channel(state, clock) for _ in range(100)]
    for channel_id in channel_ids:
        state.upload(channel_id, "Today's upload")
    batches = [channel_ids[:50], channel_ids[50:]]

    async def cycle() -> tuple[int, dict[str, Observation]]:
        clock.advance(minutes=1)
        before = video_calls(state)
        observed: dict[str, Observation] = {}
        for batch in batches:
            observed |= await observe_all(adapter, batch)
        return video_calls(state) - before, observed

    calls, _ = await cycle()
    assert calls == 2
    calls, observed = await cycle()
    assert calls == 0
    assert {o.kind for o in observed.values()} == {OFFLINE}

    streamers = [channel_ids[0], channel_ids[1], channel_ids[70]]
    videos = [state.go_live(c, viewers=10) for c in streamers]
    for _ in range(3):
        calls, observed = await cycle()
        assert calls / len(channel_ids) <= 0.02
        assert {c for c, o in observed.items() if o.kind is LIVE} == set(streamers)
        for video in videos:
            state.update_video(video.video_id, viewers=(video.viewers or 0) + 1)
    assert state.requests["search"] == 0


# --- resolve ---


async def test_resolve_handles_ids_and_urls(
    adapter: YouTubeAdapter, state: FakeYouTubeState
) -> None:
    channel = state.add_channel(handle="LumioTest", title="Lumio Test")
    expected = ResolvedChannel(channel.channel_id, "Lumio Test")
    typed = [
        "@LumioTest",
        "lumiotest",
        "https://www.youtube.com/@lumiotest",
        "youtube.com/@LumioTest/live",
        f"https://m.youtube.com/channel/{channel.channel_id}",
        channel.channel_id,
    ]
    for text in typed:
        assert await adapter.resolve(text) == expected, text
    assert adapter.quota_used == state.stats().quota_used == len(typed)


async def test_resolve_unknown_is_channel_not_found(
    adapter: YouTubeAdapter, state: FakeYouTubeState
) -> None:
    with pytest.raises(ChannelNotFound):
        await adapter.resolve("@nobody-here")
    with pytest.raises(ChannelNotFound):
        await adapter.resolve("UC" + "y" * 22)
    sent = adapter.requests_sent
    for text in ("https://example.com/@LumioTest", "https://www.youtube.com/watch?v=abc", "@a"):
        with pytest.raises(ChannelNotFound):
            await adapter.resolve(text)
    # Input that cannot name a channel costs no request.
    assert adapter.requests_sent == sent

    state.exhaust_quota()
    with pytest.raises(PlatformError) as raised:
        await adapter.resolve("@LumioTest")
    assert raised.value.kind == "quota_exhausted"


# --- the fake itself ---


async def get(http: httpx.AsyncClient, url: str, **params: str) -> httpx.Response:
    return await http.get(url, params={"key": KEY, **params})


def reason(response: httpx.Response) -> str:
    body = response.json()
    assert body["error"]["code"] == response.status_code
    value: str = body["error"]["errors"][0]["reason"]
    return value


async def test_fake_videos_list_is_strict(
    http: httpx.AsyncClient, fake_url: str, state: FakeYouTubeState, clock: Clock
) -> None:
    url = f"{fake_url}/youtube/v3/videos"
    part = "snippet,liveStreamingDetails"
    too_many = await get(http, url, part=part, id=",".join(f"v{n}" for n in range(51)))
    assert (too_many.status_code, reason(too_many)) == (400, "invalidFilters")
    missing_part = await get(http, url, id="v1")
    assert (missing_part.status_code, reason(missing_part)) == (400, "required")
    bad_part = await get(http, url, part="snippet,bogus", id="v1")
    assert (bad_part.status_code, reason(bad_part)) == (400, "unknownPart")
    no_key = await http.get(url, params={"part": part, "id": "v1"})
    assert (no_key.status_code, reason(no_key)) == (403, "forbidden")
    bad_key = await http.get(url, params={"part": part, "id": "v1", "key": "wrong"})
    assert (bad_key.status_code, reason(bad_key)) == (400, "keyInvalid")
    assert state.video_batch_sizes == []
    # Refused requests with a valid key still cost a unit each.
    assert state.stats().quota_used == 3


async def test_fake_videos_list_shapes(
    http: httpx.AsyncClient, fake_url: str, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = state.add_channel().channel_id
    upload = state.upload(channel_id)
    ended = state.go_live(channel_id, viewers=5)
    state.end_stream(channel_id)
    live = state.go_live(channel_id, viewers=842)
    ids = ",".join([live.video_id, "missing0000", upload.video_id, ended.video_id])

    response = await get(
        http, f"{fake_url}/youtube/v3/videos", part="snippet,liveStreamingDetails", id=ids
    )
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "youtube#videoListResponse"
    items = {item["id"]: item for item in body["items"]}
    assert set(items) == {live.video_id, upload.video_id, ended.video_id}
    assert items[live.video_id]["liveStreamingDetails"]["concurrentViewers"] == "842"
    assert items[live.video_id]["snippet"]["liveBroadcastContent"] == "live"
    assert "liveStreamingDetails" not in items[upload.video_id]
    ended_details = items[ended.video_id]["liveStreamingDetails"]
    assert "actualEndTime" in ended_details
    assert "concurrentViewers" not in ended_details
    assert items[ended.video_id]["snippet"]["liveBroadcastContent"] == "none"


async def test_fake_quota_body_and_daily_reset(
    http: httpx.AsyncClient, fake_url: str, state: FakeYouTubeState, clock: Clock
) -> None:
    url = f"{fake_url}/youtube/v3/videos"
    state.exhaust_quota()
    refused = await get(http, url, part="snippet", id="v1")
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["errors"][0] == {
        "message": error["message"],
        "domain": "youtube.quota",
        "reason": "quotaExceeded",
    }
    # 18:00 UTC on 1 Sept is 11:00 in Los Angeles; the quota comes back at its midnight.
    clock.advance(hours=12, minutes=30)
    assert (await get(http, url, part="snippet", id="v1")).status_code == 403
    clock.advance(minutes=31)
    assert (await get(http, url, part="snippet", id="v1")).status_code == 200


async def test_fake_search_charges_100_units(
    http: httpx.AsyncClient, fake_url: str, state: FakeYouTubeState
) -> None:
    channel_id = state.add_channel().channel_id
    video = state.go_live(channel_id)
    url = f"{fake_url}/youtube/v3/search"
    needs_type = await get(http, url, part="snippet", channelId=channel_id, eventType="live")
    assert (needs_type.status_code, reason(needs_type)) == (400, "invalidSearchFilter")
    found = await get(
        http, url, part="snippet", channelId=channel_id, eventType="live", type="video"
    )
    assert [i["id"]["videoId"] for i in found.json()["items"]] == [video.video_id]
    assert state.stats().quota_used == 200
    assert state.stats().requests["search"] == 2


async def test_fake_channels_and_playlist_items(
    http: httpx.AsyncClient, fake_url: str, state: FakeYouTubeState, clock: Clock
) -> None:
    channel = state.add_channel(handle="Maker")
    uploads = []
    for n in range(3):
        clock.advance(minutes=1)
        uploads.append(state.upload(channel.channel_id, f"Upload {n}"))
    channels = f"{fake_url}/youtube/v3/channels"
    nobody = await get(http, channels, part="snippet", forHandle="@nobody")
    assert nobody.status_code == 200
    assert "items" not in nobody.json()
    found = await get(http, channels, part="snippet,contentDetails", forHandle="@maker")
    [item] = found.json()["items"]
    playlist_id = item["contentDetails"]["relatedPlaylists"]["uploads"]
    assert playlist_id == "UU" + channel.channel_id[2:]

    items_url = f"{fake_url}/youtube/v3/playlistItems"
    page = await get(http, items_url, part="contentDetails", playlistId=playlist_id, maxResults="2")
    listed = [i["contentDetails"]["videoId"] for i in page.json()["items"]]
    assert listed == [uploads[2].video_id, uploads[1].video_id]
    rest = await get(
        http,
        items_url,
        part="contentDetails",
        playlistId=playlist_id,
        pageToken=page.json()["nextPageToken"],
    )
    assert [i["contentDetails"]["videoId"] for i in rest.json()["items"]] == [uploads[0].video_id]
    too_many = await get(
        http, items_url, part="contentDetails", playlistId=playlist_id, maxResults="51"
    )
    assert too_many.status_code == 400
    missing = await get(http, items_url, part="contentDetails", playlistId="UU" + "z" * 22)
    assert (missing.status_code, reason(missing)) == (404, "playlistNotFound")


async def test_fake_feed_serves_the_newest_15_entries(
    http: httpx.AsyncClient, fake_url: str, state: FakeYouTubeState, clock: Clock
) -> None:
    channel_id = state.add_channel(title="Tom & Jerry <3").channel_id
    uploads = []
    for n in range(20):
        clock.advance(minutes=1)
        uploads.append(state.upload(channel_id, f"Upload {n} & more"))

    response = await http.get(f"{fake_url}/feeds/videos.xml", params={"channel_id": channel_id})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    entries = parse_feed(response.content)
    assert [e.video_id for e in entries] == [u.video_id for u in reversed(uploads)][:15]
    assert entries[0].published == clock.now

    unknown = await http.get(f"{fake_url}/feeds/videos.xml", params={"channel_id": "UCnobody"})
    assert unknown.status_code == 404


async def test_fake_control_interface_over_http(
    http: httpx.AsyncClient, fake_url: str, adapter: YouTubeAdapter
) -> None:
    control = f"{fake_url}/_control"
    created = await http.post(f"{control}/channels", json={"handle": "remote"})
    assert created.status_code == 200
    channel_id = created.json()["channel_id"]

    live = await http.post(
        f"{control}/channels/{channel_id}/live", json={"title": "From afar", "viewers": 7}
    )
    video_id = live.json()["video_id"]
    observed = await observe_one(adapter, channel_id)
    assert observed.stream is not None
    assert (observed.stream.title, observed.stream.viewers) == ("From afar", 7)

    await http.patch(f"{control}/videos/{video_id}", json={"title": "Still here", "viewers": 9})
    observed = await observe_one(adapter, channel_id)
    assert observed.stream is not None
    assert (observed.stream.title, observed.stream.viewers) == ("Still here", 9)

    failing = await http.post(f"{control}/failures", json={"mode": "5xx", "endpoint": "videos"})
    assert failing.status_code == 200
    assert (await observe_one(adapter, channel_id)).kind is UNKNOWN

    assert (await http.post(f"{control}/channels/{channel_id}/end")).status_code == 200
    assert (await observe_one(adapter, channel_id)).kind is OFFLINE
    assert (await http.post(f"{control}/channels/{channel_id}/end")).status_code == 409

    exhausted = (await http.post(f"{control}/quota/exhaust")).json()
    assert exhausted["quota_used"] == exhausted["quota_limit"]
    assert (await http.post(f"{control}/quota/reset")).json()["quota_used"] == 0
    stats = (await http.get(f"{control}/stats")).json()
    assert stats["requests"]["feed"] == 4
    assert stats["requests"]["videos"] == 4
    assert "search" not in stats["requests"]

    assert (await http.post(f"{control}/failures", json={"mode": "melt"})).status_code == 400
    assert (await http.post(f"{control}/channels/UCnope/live", json={})).status_code == 404
