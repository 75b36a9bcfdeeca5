"""A platform worker on the fake Kick with a controllable clock, and helpers to read history."""

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
from redis.asyncio.client import PubSub

from lumio.channels import repository as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.kit.settings import KickSettings, Settings
from lumio.platforms.base import Platform
from lumio.platforms.kick import KickAdapter
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
    settings: Settings
    http: httpx.AsyncClient
    db: asyncpg.Pool
    events: PubSub
    account: UUID
    channel_id: str

    async def poll_after(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return await self.poller.run_once()

    async def received(self) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.2
        while (left := deadline - loop.time()) > 0:
            message = await self.events.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                found.append(orjson.loads(message["data"]))
        return found

    async def sessions(self) -> list[asyncpg.Record]:
        return await self.db.fetch(
            "SELECT * FROM stream_sessions WHERE account_id = $1 ORDER BY started_at", self.account
        )

    async def until_offline(self, step: float = 20, polls: int = 20) -> None:
        for _ in range(polls):
            await self.poll_after(step)
            row = await self.db.fetchrow("SELECT is_online FROM channel_status")
            if row is not None and not row["is_online"]:
                return
        raise AssertionError("never went offline")


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
    configured = settings.updated(
        {
            "kick": {
                "client_id": state.client_id,
                "client_secret": state.client_secret,
                "api_base": url,
                "id_base": url,
                "timeout": timedelta(seconds=1),
            },
            "detection": {"poll_batch_wait": timedelta(0)},
        }
    )
    account, _ = await factory.account()
    channel = state.add_channel("streamer", title="Hello", category="IRL", viewers=10)
    await channels.link(db, account, Platform.KICK, channel.channel_id, "streamer")
    await db.execute("UPDATE platform_channels SET next_poll_at = $1", clock())
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"lumio:channel_status:{account}")
    async with httpx.AsyncClient() as client:
        # Observation times from the same clock as the worker's: outages are minutes of it.
        kick_config = KickSettings(
            client_id=state.client_id,
            client_secret=state.client_secret,
            api_base=url,
            id_base=url,
            timeout=timedelta(seconds=1),
        )
        adapter = KickAdapter(kick_config, client, clock)
        config = PollerConfig.from_settings(configured, Platform.KICK)
        poller = PlatformPoller(adapter, db, redis, config, WorkerMetrics(), clock)
        yield Rig(clock, state, poller, configured, client, db, pubsub, account, channel.channel_id)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
