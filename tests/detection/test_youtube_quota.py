"""The YouTube quota pacer against real Redis, the adapter's rationing against the strict fake, and
the worker keeping finished verdicts across a restart (real PostgreSQL), all on a stepped clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis

from lumio.channel_status import repository as status
from lumio.channels import repository as channels
from lumio.detection.budget import quota_key
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.quota import QuotaPacer, live_key
from lumio.detection.quota_plan import QuotaPolicy, allowance, live_allowance
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.youtube import FakeYouTubeState, create_app
from lumio.kit.settings import Settings
from lumio.platforms.base import ObservationKind, Platform
from lumio.platforms.youtube import FINISHED_VIDEOS, YouTubeAdapter
from tests.conftest import Factory

KEY = "quota-key"
# Midnight Pacific, 30 November 2026 (PST).
MIDNIGHT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def no_live_channels() -> int:
    return 0


async def forget_quota(redis: Redis, *moments: datetime) -> None:
    for moment in moments:
        await redis.delete(quota_key(moment), live_key(moment))
    await redis.delete("lumio:budget:youtube")


# --- the pacer over Redis ---


async def test_concurrent_grants_never_pass_the_allowance(redis: Redis) -> None:
    clock = Clock(MIDNIGHT + timedelta(hours=1))
    await forget_quota(redis, clock.now)
    policy = QuotaPolicy(2_400)
    pacers = [QuotaPacer(redis, policy, no_live_channels, clock) for _ in range(4)]
    granted = await asyncio.gather(*(p.grant(5, live=False) for p in pacers for _ in range(10)))
    assert sum(granted) == allowance(policy, clock.now) == 147
    assert int(await redis.get(quota_key(clock.now)) or 0) == 147


async def test_candidates_keep_their_share_when_re_confirmations_are_refused(
    redis: Redis,
) -> None:
    clock = Clock(MIDNIGHT + timedelta(hours=6))
    await forget_quota(redis, clock.now)
    policy = QuotaPolicy(4_800)
    pacer = QuotaPacer(redis, policy, no_live_channels, clock)
    live_limit = live_allowance(policy, clock.now)
    assert await pacer.grant(10_000, live=True) == live_limit
    assert await pacer.grant(1, live=True) == 0
    # The go-lives of the next hours still find units.
    assert await pacer.grant(10_000, live=False) == allowance(policy, clock.now) - live_limit > 0
    assert int(await redis.get(live_key(clock.now)) or 0) == live_limit


async def test_a_new_quota_at_midnight_pacific(redis: Redis) -> None:
    clock = Clock(MIDNIGHT - timedelta(seconds=1))
    await forget_quota(redis, clock.now, MIDNIGHT)
    pacer = QuotaPacer(redis, QuotaPolicy(4_800), no_live_channels, clock)
    assert await pacer.grant(10_000, live=False) == 4_799
    assert await pacer.grant(1, live=False) == 0
    clock.advance(1)
    assert await pacer.grant(10_000, live=False) == 100
    assert pacer.figures.used == 100
    assert int(await redis.get(quota_key(MIDNIGHT - timedelta(seconds=1))) or 0) == 4_799


async def test_without_redis_a_process_grants_against_its_own_count() -> None:
    clock = Clock(MIDNIGHT + timedelta(hours=12))
    closed = Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    pacer = QuotaPacer(closed, QuotaPolicy(4_800), no_live_channels, clock)
    first = await pacer.grant(10_000, live=False)
    assert first == allowance(pacer.policy, clock.now)
    assert await pacer.grant(1, live=False) == 0
    await closed.aclose()


# --- the adapter's rationing ---


@dataclass
class Gate:
    """A gate that grants candidates and re-confirmations as told, and records the asks."""

    candidates: int
    live: int
    asked: list[tuple[int, bool]]

    async def grant(self, units: int, live: bool) -> int:
        self.asked.append((units, live))
        granted = min(units, self.live if live else self.candidates)
        if live:
            self.live -= granted
        else:
            self.candidates -= granted
        return granted

    tick: datetime | None = None

    def freshness(self) -> timedelta:
        return timedelta(seconds=60)

    def candidate_tick(self, now: datetime) -> datetime | None:
        return self.tick


@pytest.fixture
def youtube() -> Iterator[tuple[FakeYouTubeState, str, Clock]]:
    clock = Clock(MIDNIGHT + timedelta(hours=10))
    state = FakeYouTubeState(clock=clock, api_key=KEY)
    with FakeServer(create_app(state)) as url:
        yield state, url, clock


@pytest.fixture
async def adapter(
    youtube: tuple[FakeYouTubeState, str, Clock], settings: Settings
) -> AsyncIterator[YouTubeAdapter]:
    _, url, clock = youtube
    config = settings.youtube.model_copy(update={"api_key": KEY, "api_base": url, "feed_base": url})
    async with httpx.AsyncClient() as client:
        made = YouTubeAdapter(client, config, clock)
        yield made
        await made.aclose()


async def test_candidates_go_first_and_a_live_channel_waits_live(
    youtube: tuple[FakeYouTubeState, str, Clock], adapter: YouTubeAdapter
) -> None:
    state, _, clock = youtube
    streamer, uploader = state.add_channel().channel_id, state.add_channel().channel_id
    state.go_live(streamer, title="On air")
    first = await adapter.observe([streamer])
    assert first.observations[0].kind is ObservationKind.LIVE
    adapter.quota_gate = gate = Gate(candidates=1, live=0, asked=[])
    clock.advance(60)
    state.upload(uploader)
    result = await adapter.observe([streamer, uploader])
    kinds = {o.channel_id: o for o in result.observations}
    # The upload's call had room: the live video rode along at no cost.
    assert kinds[streamer].kind is ObservationKind.LIVE
    assert kinds[uploader].kind is ObservationKind.OFFLINE
    assert gate.asked == [(1, False), (0, True)]
    assert result.quota_units == result.quota_prepaid == 1
    clock.advance(60)
    result = await adapter.observe([streamer, uploader])
    [deferred] = [o for o in result.observations if o.channel_id == streamer]
    # No units for re-confirmations: unknown (the status stays live), never offline.
    assert deferred.kind is ObservationKind.UNKNOWN
    assert deferred.error_kind == "quota_deferred"
    assert result.quota_units == 0
    assert gate.asked[-1] == (1, True)


async def test_a_deferred_candidate_is_confirmed_once_units_come(
    youtube: tuple[FakeYouTubeState, str, Clock], adapter: YouTubeAdapter
) -> None:
    state, _, clock = youtube
    channel = state.add_channel().channel_id
    await adapter.observe([channel])
    adapter.quota_gate = gate = Gate(candidates=0, live=0, asked=[])
    state.go_live(channel)
    [waiting] = (await adapter.observe([channel])).observations
    assert waiting.kind is ObservationKind.UNKNOWN
    assert waiting.error_kind == "quota_deferred"
    gate.candidates = 1
    clock.advance(30)
    [live] = (await adapter.observe([channel])).observations
    assert live.kind is ObservationKind.LIVE
    assert state.requests["videos"] == 1


async def test_candidates_of_separate_batches_wait_for_one_tick_and_share_a_call(
    youtube: tuple[FakeYouTubeState, str, Clock], adapter: YouTubeAdapter
) -> None:
    state, _, clock = youtube
    first, second = state.add_channel().channel_id, state.add_channel().channel_id
    await adapter.observe([first, second])
    tick = clock.now + timedelta(seconds=30)
    adapter.quota_gate = Gate(candidates=10, live=10, asked=[], tick=tick)
    state.go_live(first)
    state.upload(second)
    held = [(await adapter.observe([c])).observations[0] for c in (first, second)]
    assert [o.error_kind for o in held] == ["quota_deferred", "quota_deferred"]
    assert state.requests["videos"] == 0
    clock.now = tick
    result = await adapter.observe([first, second])
    kinds = {o.channel_id: o.kind for o in result.observations}
    assert kinds == {first: ObservationKind.LIVE, second: ObservationKind.OFFLINE}
    assert state.video_batch_sizes == [2]
    # What the worker keeps: nothing held any more, the upload finished.
    assert adapter.memo(second)["waiting_videos"] == {}


async def test_held_candidates_travel_with_the_stored_state(
    youtube: tuple[FakeYouTubeState, str, Clock], adapter: YouTubeAdapter
) -> None:
    state, _, clock = youtube
    channel = state.add_channel().channel_id
    await adapter.observe([channel])
    tick = clock.now + timedelta(seconds=30)
    adapter.quota_gate = Gate(candidates=10, live=10, asked=[], tick=tick)
    state.go_live(channel)
    await adapter.observe([channel])
    stored = orjson.loads(orjson.dumps(adapter.memo(channel)))
    config = adapter._config
    async with httpx.AsyncClient() as client:
        other = YouTubeAdapter(client, config, clock)
        other.quota_gate = Gate(candidates=10, live=10, asked=[], tick=tick + timedelta(30))
        other.recall(channel, stored)
        clock.now = tick
        [live] = (await other.observe([channel])).observations
        await other.aclose()
    # Another replica confirms it at the tick it was held for, not one later.
    assert live.kind is ObservationKind.LIVE


async def test_a_finished_video_is_never_confirmed_again_even_when_pushed(
    youtube: tuple[FakeYouTubeState, str, Clock], adapter: YouTubeAdapter
) -> None:
    state, _, clock = youtube
    channel = state.add_channel().channel_id
    upload = state.upload(channel)
    await adapter.observe([channel])
    assert adapter.finished_videos(channel) == [upload.video_id]
    clock.advance(60)
    # A WebSub notification of a title edit names the video as a possible stream.
    await adapter.observe([channel], {channel: upload.video_id})
    assert state.requests["videos"] == 1


# --- the worker: verdicts outlive the process; no quota is never offline ---


@dataclass
class Rig:
    state: FakeYouTubeState
    url: str
    clock: Clock
    db: asyncpg.Pool
    redis: Redis
    settings: Settings
    account: UUID
    http: httpx.AsyncClient
    adapters: list[YouTubeAdapter]

    def poller(self, daily_quota: int = 10_000) -> PlatformPoller:
        """A fresh poller with a fresh adapter: another replica, or this one restarted."""
        configured = self.settings.updated(
            {
                "youtube": {
                    "api_key": KEY,
                    "api_base": self.url,
                    "feed_base": self.url,
                    "daily_quota": daily_quota,
                },
                "detection": {"poll_batch_wait": timedelta(0)},
            }
        )
        adapter = YouTubeAdapter(self.http, configured.youtube, self.clock)
        self.adapters.append(adapter)
        config = PollerConfig.from_settings(configured, Platform.YOUTUBE)
        return PlatformPoller(adapter, self.db, self.redis, config, WorkerMetrics(), self.clock)

    async def poll(self, poller: PlatformPoller, after: float) -> int:
        self.clock.advance(after)
        await self.db.execute("UPDATE platform_channels SET next_poll_at = $1", self.clock())
        return await poller.run_once()


@pytest.fixture
async def rig(
    youtube: tuple[FakeYouTubeState, str, Clock],
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    factory: Factory,
) -> AsyncIterator[Rig]:
    state, url, clock = youtube
    await forget_quota(redis, clock.now)
    account, _ = await factory.account("Quota")
    async with httpx.AsyncClient() as http:
        made = Rig(state, url, clock, db, redis, settings, account, http, [])
        yield made
        for adapter in made.adapters:
            await adapter.aclose()


async def link(rig: Rig) -> str:
    channel = rig.state.add_channel().channel_id
    await channels.link(rig.db, rig.account, Platform.YOUTUBE, channel, "Quota")
    return channel


async def test_finished_verdicts_survive_a_restart(rig: Rig) -> None:
    channel = await link(rig)
    upload = rig.state.upload(channel)
    poller = rig.poller()
    # Held for the next tick of 30 s, then confirmed.
    assert await rig.poll(poller, 1) == 1
    assert rig.state.requests["videos"] == 0
    assert await rig.poll(poller, 30) == 1
    assert rig.state.requests["videos"] == 1
    stored = await rig.db.fetchval(
        "SELECT detector_state -> $1 FROM platform_channels", FINISHED_VIDEOS
    )
    assert upload.video_id in orjson.loads(stored)
    # Another replica (or this one restarted) knows the upload without asking.
    assert await rig.poll(rig.poller(), 60) == 1
    assert rig.state.requests["videos"] == 1
    # Without the stored verdict the fresh adapter would have asked again.
    await rig.db.execute(
        "UPDATE platform_channels SET detector_state = detector_state - $1", FINISHED_VIDEOS
    )
    fresh = rig.poller()
    await rig.poll(fresh, 60)
    await rig.poll(fresh, 30)
    assert rig.state.requests["videos"] == 2


async def test_an_ended_stream_is_not_confirmed_again_during_the_grace(rig: Rig) -> None:
    channel = await link(rig)
    rig.state.go_live(channel)
    poller = rig.poller()
    await rig.poll(poller, 1)
    await rig.poll(poller, 30)
    rig.state.end_stream(channel)
    await rig.poll(poller, 60)
    calls = rig.state.requests["videos"]
    # In the grace the stored stream id is handed back as live; a restarted worker knows better.
    for _ in range(3):
        await rig.poll(rig.poller(), 50)
    assert rig.state.requests["videos"] == calls
    row = await status.get_status(rig.db, rig.account)
    assert not row[0].is_online


async def test_no_quota_keeps_a_live_channel_live_and_its_schedule(rig: Rig) -> None:
    # 48 units: a head start of one unit, all of it the candidates' share.
    rig.clock.now = MIDNIGHT
    await forget_quota(rig.redis, MIDNIGHT)
    channel = await link(rig)
    rig.state.go_live(channel)
    poller = rig.poller(daily_quota=48)
    await rig.poll(poller, 1)
    await rig.poll(poller, 30)
    [row] = await status.get_status(rig.db, rig.account)
    assert row.is_online
    for _ in range(3):
        await rig.poll(poller, 30)
    [row] = await status.get_status(rig.db, rig.account)
    assert row.is_online
    [stored] = await rig.db.fetch(
        "SELECT consecutive_errors, last_error, detector_state ->> 'phase' AS phase "
        "FROM platform_channels"
    )
    assert tuple(stored) == (0, None, "live")
    assert rig.state.requests["videos"] == 1
    assert int(await rig.redis.get(quota_key(rig.clock())) or 0) == 1
