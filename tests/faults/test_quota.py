"""Honest accounting (issue 9): with four batches in flight on one adapter, the YouTube quota
counted in Redis equals the units the platform charged — each observe() reports its own cost,
so overlapping batches never count each other's units."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from lumio.channels import repository as channels
from lumio.detection.budget import quota_key
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.youtube import FakeYouTubeState, create_app
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter

CHANNELS = 200
CONCURRENCY = 4
KEY = "fault-suite-key"


@pytest.fixture
def youtube() -> Iterator[tuple[FakeYouTubeState, str]]:
    state = FakeYouTubeState(api_key=KEY)
    with FakeServer(create_app(state)) as url:
        yield state, url


async def test_quota_in_redis_equals_the_units_the_fake_charged(
    youtube: tuple[FakeYouTubeState, str], settings: Settings, db: asyncpg.Pool, redis: Redis
) -> None:
    state, url = youtube
    await redis.delete("lumio:budget:youtube", quota_key(datetime.now(UTC)))
    accounts = await db.fetch(
        "INSERT INTO accounts (name) SELECT 'quota ' || n FROM generate_series(1, $1) n "
        "RETURNING id",
        CHANNELS,
    )
    for n, row in enumerate(accounts):
        channel = state.add_channel()
        if n % 2 == 0:
            state.go_live(channel.channel_id, title=f"Live {n}")
        else:
            state.upload(channel.channel_id)
        await channels.link(db, row["id"], Platform.YOUTUBE, channel.channel_id, f"c{n}")
    half = timedelta(seconds=0.5)
    configured = settings.updated(
        {
            "youtube": {
                "api_key": KEY,
                "api_base": url,
                "feed_base": url,
                "timeout": timedelta(seconds=5),
            },
            "detection": {
                "poll_offline": half,
                "poll_live": half,
                "poll_settling": half,
                "poll_batch_wait": timedelta(0),
            },
        }
    )
    async with httpx.AsyncClient() as client:
        adapter = build_adapter(Platform.YOUTUBE, configured, client)
        config = PollerConfig.from_settings(configured, Platform.YOUTUBE)
        poller = PlatformPoller(adapter, db, redis, config, WorkerMetrics())
        worker = Worker([poller], CONCURRENCY)
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(6)
        worker.stop()
        await asyncio.wait_for(running, 20)
    charged = state.stats().quota_used
    counted = int(await redis.get(quota_key(datetime.now(UTC))) or 0)
    # Several cycles of four batches, each confirming its live videos.
    assert charged >= 2 * CHANNELS // 50
    assert counted == charged
    assert adapter.quota_used == charged
