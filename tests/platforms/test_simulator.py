"""`lumio dev`'s simulated platforms: the fakes, the simulator, and the chain from a simulated
go-live through the real worker to the channel_status row (real PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from lumio.channel_status import repository as status
from lumio.channel_status.schemas import ChannelStatus
from lumio.detection.budget import budget_key, quota_key
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.dev.run import dev_settings, link_demo_channels
from lumio.dev.simulator import (
    CATEGORIES,
    DEMO_CHANNELS,
    Fakes,
    Phase,
    Show,
    Simulator,
    start_fakes,
)
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.platforms.youtube import category_name
from tests.conftest import Factory

GRACE = 4.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    fleet = start_fakes()
    yield fleet
    fleet.stop()


def fake_live(fakes: Fakes, platform: Platform) -> bool:
    """Whether the platform's fake shows its demo channel live (read without side effects)."""
    cid = next(d.channel_id for d in DEMO_CHANNELS if d.platform is platform)
    match platform:
        case Platform.TWITCH:
            return fakes.twitch.channel(cid).live
        case Platform.YOUTUBE:
            with fakes.youtube.lock:
                return any(v.state == "live" for v in fakes.youtube.uploads(cid))
        case Platform.KICK:
            channel = fakes.kick.channel(cid)
        case Platform.TROVO:
            channel = fakes.trovo.channel(cid)
    assert channel is not None
    return channel.live


def test_fakes_serve_with_their_credentials(fakes: Fakes) -> None:
    settings = dev_settings(Settings(), fakes)
    assert configured_platforms(settings) == list(Platform)
    assert settings.detection.poll_offline == timedelta(seconds=5)
    for platform in Platform:
        assert fakes.url(platform).startswith("http://127.0.0.1:")
        assert not fake_live(fakes, platform)


def test_simulator_keeps_fakes_in_step_and_drops_short(fakes: Fakes) -> None:
    clock = Clock()
    sim = Simulator(fakes, 30.0, max_drop=40.0, rng=random.Random(7), clock=clock)
    sim.step()
    assert sum(sim.phase(p) is Phase.LIVE for p in Platform) == 1
    seen = dict.fromkeys(Phase, 0)
    dropped_at: dict[Platform, float] = {}
    ended_at: dict[Platform, float] = {}
    rests = 0
    before = {p: sim.phase(p) for p in Platform}
    for _ in range(400):
        clock.now += 5.0
        sim.resume_due()
        if clock.now % 30 == 0:
            sim.step()
        for platform in Platform:
            phase = sim.phase(platform)
            seen[phase] += 1
            assert fake_live(fakes, platform) is (phase is Phase.LIVE)
            if phase is Phase.DROPPED:
                dropped_at.setdefault(platform, clock.now)
            elif platform in dropped_at:
                # Back (or ended) well inside the 120-second grace period.
                assert clock.now - dropped_at.pop(platform) <= 40.0 + 5.0
            if before[platform] is Phase.LIVE and phase is Phase.OFFLINE:
                ended_at[platform] = clock.now
            elif phase is Phase.LIVE and platform in ended_at:
                # Offline for longer than the grace period between streams, so that an end shows.
                assert clock.now - ended_at.pop(platform) >= 150.0
                rests += 1
            before[platform] = phase
    assert all(seen.values()), seen
    assert rests > 0


async def rows(db: asyncpg.Pool, account: UUID) -> dict[str, ChannelStatus]:
    return {row.platform: row for row in await status.get_status(db, account)}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def events(pubsub: PubSub) -> list[dict[str, object]]:
    """Every event so far (None also stands for a swallowed subscribe confirmation)."""
    found: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.5
    while (left := deadline - loop.time()) > 0:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            found.append(orjson.loads(message["data"]))
    return found


@pytest.fixture
async def worker(
    fakes: Fakes, settings: Settings, db: asyncpg.Pool, redis: Redis
) -> AsyncIterator[Settings]:
    """The platform worker of `lumio dev`, polling the fakes every 0.2 s with a 4 s grace."""
    fast = {"poll_offline": 0.2, "poll_live": 0.2, "poll_settling": 0.2, "grace": GRACE}
    timeouts = {p.value: {"timeout": 2.0} for p in Platform}
    configured = dev_settings(settings, fakes).updated(
        {"detection": fast, "platform_timeout": timedelta(seconds=2), **timeouts}
    )
    await redis.delete(*(budget_key(p) for p in Platform), quota_key(datetime.now(UTC)))
    async with httpx.AsyncClient() as http:
        pollers = [
            PlatformPoller(
                build_adapter(p, configured, http),
                db,
                redis,
                PollerConfig.from_settings(configured, p),
                WorkerMetrics(),
            )
            for p in configured_platforms(configured)
        ]
        running = Worker(pollers)
        task = asyncio.create_task(running.run())
        yield configured
        running.stop()
        await asyncio.wait_for(task, 10)
        for poller in pollers:
            await poller.adapter.aclose()


async def test_a_simulated_go_live_reaches_channel_status(
    fakes: Fakes, worker: Settings, db: asyncpg.Pool, redis: Redis, factory: Factory
) -> None:
    account, _ = await factory.account()
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"lumio:channel_status:{account}")
    async with httpx.AsyncClient() as http:
        linked = await link_demo_channels(db, redis, http, worker, account)
        assert len(linked) == 4
        # A second start links nothing again.
        assert await link_demo_channels(db, redis, http, worker, account) == []

    async def all_offline() -> bool:
        found = await rows(db, account)
        return len(found) == 4 and not any(r.is_online for r in found.values())

    await eventually(all_offline, "a row for every demo channel")

    # The simulator's first tick puts one channel live; the worker sees it.
    sim = Simulator(fakes, rng=random.Random(3))
    sim.step()
    (first,) = [p for p in Platform if sim.phase(p) is Phase.LIVE]
    shows: dict[Platform, Show] = {first: sim.start_stream(first)}
    for platform in Platform:
        shows[platform] = sim.start_stream(platform)

    async def all_online() -> bool:
        return all(r.is_online for r in (await rows(db, account)).values())

    await eventually(all_online, "every demo channel online")
    for name, row in (await rows(db, account)).items():
        show = shows[Platform(name)]
        youtube_name = category_name(CATEGORIES[show.category])
        category = youtube_name if name == "youtube" else show.category
        assert (row.stream_title, row.category) == (show.title, category)
        assert row.viewer_count == show.viewers and row.started_at is not None

    # A short drop (well inside the grace period) never shows offline.
    sim.drop(first, seconds=1.0)
    loop = asyncio.get_running_loop()
    until = loop.time() + 3.0
    while loop.time() < until:
        assert (await rows(db, account))[first.value].is_online
        sim.resume_due()
        await asyncio.sleep(0.1)
    assert sim.phase(first) is Phase.LIVE

    # A real end shows offline once the grace period has passed.
    sim.end_stream(first)

    async def first_offline() -> bool:
        return not (await rows(db, account))[first.value].is_online

    await eventually(first_offline, f"{first} offline", within=GRACE + 6)
    reasons = [(str(e["platform"]), str(e["reason"])) for e in await events(pubsub)]
    assert sorted(r for p, r in reasons if p == first.value and r != "stream_updated") == [
        "went_offline",
        "went_online",
    ]
    assert {p for p, r in reasons if r == "went_online"} == {p.value for p in Platform}
    await pubsub.aclose()  # type: ignore[no-untyped-call]
