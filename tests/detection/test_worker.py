"""The platform worker against real PostgreSQL and Redis and a fake Kick over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from lumio.channel_status import repository as status
from lumio.channels import repository as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform, PollResult
from lumio.platforms.registry import build_adapter
from tests.conftest import Factory


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    clock: Clock
    kick: FakeKickState
    poller: PlatformPoller
    db: asyncpg.Pool
    events: PubSub
    account: UUID
    channel_id: str

    async def poll_after(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return await self.poller.run_once()

    async def received(self) -> list[dict[str, object]]:
        """Events so far; each is checked against the committed row as it arrives."""
        found: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.3
        while (left := deadline - loop.time()) > 0:
            # None also stands for a swallowed subscribe confirmation: keep reading until the end.
            message = await self.events.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is None:
                continue
            event = orjson.loads(message["data"])
            rows = await status.get_status(self.db, self.account)
            if event["reason"] in ("went_online", "went_offline"):
                assert rows[0].is_online is event["is_online"], "event published before commit"
            found.append(event)
        return found


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str, Clock]]:
    clock = Clock()
    state = FakeKickState(clock=lambda: clock().timestamp())
    with FakeServer(kick_app(state)) as url:
        yield state, url, clock


@pytest.fixture
async def rig(
    kick: tuple[FakeKickState, str, Clock],
    settings: Settings,
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> AsyncIterator[Rig]:
    state, url, clock = kick
    state.reset()
    await redis.delete("lumio:budget:kick")
    kick_fake = {
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "api_base": url,
        "id_base": url,
        "timeout": 1.0,
    }
    # One channel is never a full batch: poll it as soon as it is due.
    configured = settings.updated({"kick": kick_fake, "detection": {"poll_batch_wait": 0.0}})
    account, _ = await factory.account()
    channel = state.add_channel("streamer", title="Hello", category="IRL", viewers=10)
    await channels.link(db, account, Platform.KICK, channel.channel_id, "streamer")
    await db.execute("UPDATE platform_channels SET next_poll_at = $1", clock())
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"lumio:channel_status:{account}")
    async with httpx.AsyncClient() as client:
        adapter = build_adapter(Platform.KICK, configured, client)
        config = PollerConfig.from_settings(configured, Platform.KICK)
        poller = PlatformPoller(adapter, db, redis, config, WorkerMetrics(), clock)
        yield Rig(clock, state, poller, db, pubsub, account, channel.channel_id)
    await pubsub.aclose()  # type: ignore[no-untyped-call]


def reasons(events: list[dict[str, object]]) -> list[object]:
    return [e["reason"] for e in events]


async def test_go_live_update_drop_and_end(rig: Rig) -> None:
    assert await rig.poller.run_once() == 1
    (row,) = await status.get_status(rig.db, rig.account)
    assert not row.is_online
    assert await rig.received() == []

    rig.kick.set_live(rig.channel_id)
    assert await rig.poll_after(70) == 1
    (row,) = await status.get_status(rig.db, rig.account)
    assert row.is_online and row.stream_title == "Hello" and row.viewer_count == 10
    (event,) = await rig.received()
    assert event["reason"] == "went_online" and event["platform"] == "kick"
    assert event["is_online"] is True and event["account_id"] == str(rig.account)

    # Nothing is due before the live interval has passed.
    assert await rig.poll_after(5) == 0
    rig.kick.set_title(rig.channel_id, "New title")
    rig.kick.set_viewers(rig.channel_id, 25)
    assert await rig.poll_after(40) == 1
    assert reasons(await rig.received()) == ["stream_updated"]
    (row,) = await status.get_status(rig.db, rig.account)
    assert (row.stream_title, row.viewer_count) == ("New title", 25)

    # A 60-second drop inside the 120-second grace: no offline, no events.
    rig.kick.set_offline(rig.channel_id)
    await rig.poll_after(40)
    await rig.poll_after(20)
    await rig.poll_after(20)
    rig.kick.set_live(rig.channel_id, title="New title", viewers=25)
    await rig.poll_after(20)
    assert await rig.received() == []
    (row,) = await status.get_status(rig.db, rig.account)
    assert row.is_online

    # A real end: offline only once the grace has passed, one went_offline.
    rig.kick.set_offline(rig.channel_id)
    polled_at = []
    for _ in range(12):
        if await rig.poll_after(20):
            polled_at.append(rig.clock.now)
        (row,) = await status.get_status(rig.db, rig.account)
        if not row.is_online:
            break
    assert not row.is_online
    assert reasons(await rig.received()) == ["went_offline"]
    assert polled_at[-1] - polled_at[0] >= timedelta(seconds=120)


async def test_errors_while_live_change_nothing(rig: Rig) -> None:
    rig.kick.set_live(rig.channel_id)
    await rig.poller.run_once()
    assert reasons(await rig.received()) == ["went_online"]
    before = await status.get_status(rig.db, rig.account)
    for mode in ("5xx", "garbage", "timeout", "429"):
        rig.kick.fail_next(1, mode, "/public/v1/channels")
        await rig.poll_after(400)
        assert await status.get_status(rig.db, rig.account) == before, mode
    assert await rig.received() == []
    row = await rig.db.fetchrow("SELECT consecutive_errors, last_error FROM platform_channels")
    assert row is not None
    assert row["consecutive_errors"] >= 1 and row["last_error"]


async def test_a_lost_lease_stores_nothing(rig: Rig, db: asyncpg.Pool) -> None:
    rig.kick.set_live(rig.channel_id)
    # Another replica takes the channel while this one is polling (its lease ran out).
    original = rig.poller.adapter.observe

    async def slow_observe(ids: list[str], live_streams: Mapping[str, str]) -> PollResult:
        await db.execute("UPDATE platform_channels SET lease_token = gen_random_uuid()")
        return await original(ids, live_streams)

    rig.poller.adapter.observe = slow_observe  # type: ignore[method-assign,assignment]
    await rig.poller.run_once()
    assert await status.get_status(db, rig.account) == []
    assert await rig.received() == []


async def test_restart_does_not_announce_again(rig: Rig) -> None:
    rig.kick.set_live(rig.channel_id)
    await rig.poller.run_once()
    assert reasons(await rig.received()) == ["went_online"]
    # A new poller (a restarted worker) resumes from the stored detector state.
    fresh = PlatformPoller(
        rig.poller.adapter, rig.db, rig.poller.redis, rig.poller.config, WorkerMetrics(), rig.clock
    )
    rig.clock.advance(40)
    assert await fresh.run_once() == 1
    assert await rig.received() == []
    await asyncio.sleep(0)


async def test_a_partial_batch_waits_briefly_for_more_channels(rig: Rig) -> None:
    config = replace(rig.poller.config, batch_wait=timedelta(seconds=3))
    poller = PlatformPoller(
        rig.poller.adapter, rig.db, rig.poller.redis, config, WorkerMetrics(), rig.clock
    )
    # Due now, alone: given back, and its schedule is kept.
    assert await poller.run_once() == 0
    row = await rig.db.fetchrow("SELECT next_poll_at, lease_token FROM platform_channels")
    assert row is not None
    assert row["lease_token"] is None
    assert row["next_poll_at"] == rig.clock.now
    # Once it is batch_wait late it goes out on its own.
    rig.clock.advance(3.5)
    assert await poller.run_once() == 1
