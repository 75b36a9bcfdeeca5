"""A push rig: fake Twitch, a real API over loopback (the fake's sender calls it), a worker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from lumio.api.app import create_app
from lumio.channels import repository as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.wakeups import follow_wakes
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.dev.fakes.server import FakeServer, free_port
from lumio.dev.fakes.twitch import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeTwitchState
from lumio.dev.fakes.twitch import create_app as twitch_app
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter
from lumio.platforms.twitch import TwitchAdapter
from lumio.push.reconcile import PushReconciler, build_clients
from tests.conftest import Factory
from tests.waiting import eventually

SECRET = "a-test-eventsub-secret"


@pytest.fixture(scope="module")
def twitch() -> Iterator[tuple[FakeTwitchState, str]]:
    state = FakeTwitchState()
    with FakeServer(twitch_app(state)) as url:
        yield state, url
    state.push.close()


@pytest.fixture(scope="module")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def push_settings(
    settings: Settings, twitch: tuple[FakeTwitchState, str], api_port: int
) -> Settings:
    return settings.updated(
        {
            "push": {
                "public_url": f"http://127.0.0.1:{api_port}",
                "twitch_eventsub_secret": SECRET,
                "poll_offline_with_push_seconds": 2.0,
            },
            "twitch": {
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
                "api_base": twitch[1],
                "id_base": twitch[1],
            },
            "detection": {
                "poll_offline": timedelta(seconds=60),
                "poll_settling": timedelta(seconds=0.5),
                "poll_batch_wait": timedelta(0),
            },
        }
    )


@pytest.fixture(scope="module")
def api_url(push_settings: Settings, api_port: int) -> Iterator[str]:
    with FakeServer(create_app(push_settings), port=api_port, lifespan="on") as url:
        yield url


@dataclass
class Rig:
    state: FakeTwitchState
    settings: Settings
    db: asyncpg.Pool
    redis: Redis
    api_url: str
    account: UUID
    channel_id: str
    events: PubSub
    worker: Worker
    reconciler: PushReconciler

    async def went_online(self, seconds: float) -> list[dict[str, object]]:
        found = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            message = await self.events.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                event = orjson.loads(message["data"])
                if event["reason"] == "went_online":
                    found.append(event)
        return found

    async def subscriptions(self, status: str = "enabled") -> int:
        count: int = await self.db.fetchval(
            "SELECT count(*) FROM push_subscriptions WHERE status = $1", status
        )
        return count

    def streams_requests(self) -> int:
        return self.state.stats().by_endpoint.get("streams", 0)


@pytest.fixture
async def rig(
    twitch: tuple[FakeTwitchState, str],
    push_settings: Settings,
    api_url: str,
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> AsyncIterator[Rig]:
    state = twitch[0]
    state.push.clear()
    for subscription in state.subscriptions():
        state.delete_subscription(subscription["id"])
    channel = state.add_channel(f"pushy{free_port()}")
    account, _ = await factory.account()
    await channels.link(db, account, Platform.TWITCH, channel.id, channel.login)
    events = redis.pubsub()
    await events.subscribe(f"lumio:channel_status:{account}")
    async with httpx.AsyncClient() as http:
        adapter = build_adapter(Platform.TWITCH, push_settings, http)
        assert isinstance(adapter, TwitchAdapter)
        metrics = WorkerMetrics()
        config = PollerConfig.from_settings(push_settings, Platform.TWITCH)
        worker = Worker([PlatformPoller(adapter, db, redis, config, metrics)])
        clients = build_clients(push_settings, http, {Platform.TWITCH: adapter.app_headers})
        reconciler = PushReconciler(
            db, redis, push_settings, clients, metrics, interval=timedelta(seconds=0.2)
        )
        tasks = [
            asyncio.create_task(worker.run()),
            asyncio.create_task(follow_wakes(redis, worker)),
            asyncio.create_task(reconciler.start()),
        ]
        rig = Rig(
            state,
            push_settings,
            db,
            redis,
            api_url,
            account,
            channel.id,
            events,
            worker,
            reconciler,
        )
        try:
            await eventually(lambda: _all_enabled(rig), 10)
            yield rig
        finally:
            worker.stop()
            reconciler.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[no-untyped-call]


async def _all_enabled(rig: Rig) -> bool:
    fake = rig.state.subscriptions(status="enabled")
    return len(fake) == 3 and await rig.subscriptions("enabled") == 3
