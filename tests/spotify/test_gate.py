"""The gate (DESIGN §6), against real PostgreSQL and Redis and the fake Spotify over loopback:
polled exactly while live somewhere OR manual connect is on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OnlineWrite
from lumio.channels import repository as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.spotify import FakeSpotifyState
from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.settings import Settings
from lumio.manual_connect.service import manual_key
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter
from lumio.spotify import repository as spotify_repo
from tests.conftest import Factory, Member
from tests.spotify.conftest import (
    INTERVAL,
    SpotifyClock,
    Workers,
    link_account,
    polls,
    quick_link,
    wait_until,
)

START = "mutation { startSpotifyManual { active } }"
STOP = "mutation { stopSpotifyManual }"
NOW_PLAYING = "{ spotifyNowPlaying { title isPlaying } }"
# Scheduling and loopback latency on a busy machine, on top of "one interval".
SLACK = 0.25


async def graphql(api: httpx.AsyncClient, query: str, member: Member) -> Any:
    answer = await api.post("/graphql", json={"query": query}, headers=member.bearer)
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


async def test_an_offline_account_without_manual_connect_is_never_polled(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
) -> None:
    linked = await link_account(spotify_api, fake, factory)
    fake.reset_stats()
    worker = await workers.make()
    start = spotify_clock.freeze()
    # Events that cannot open the gate come and go; the account stays offline.
    await publish(
        redis, [StatusEvent(linked.account_id, Reason.STREAM_UPDATED, start, "kick", True)]
    )
    await worker.gatekeeper.evaluate([linked.account_id])
    for _ in range(61):
        await worker.tick()
        spotify_clock.advance(1)
    # A minute of controlled time, the reconcile at its start and end included: not one request
    # (the token endpoint included).
    assert worker.gatekeeper.last_reconcile == start + timedelta(seconds=60)
    assert fake.log(None) == []

    # Nothing else held it back: the same worker polls it once manual connect is on.
    await redis.set(manual_key(linked.account_id), "on", ex=60)
    await worker.gatekeeper.evaluate([linked.account_id])
    assert await worker.tick() == 1
    assert len(polls(fake, linked.user_id)) == 1


async def test_manual_connect_starts_polling_at_once_and_expiry_or_stop_ends_it(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
) -> None:
    linked = await link_account(spotify_api, fake, factory)
    await workers.start()
    started = time.time()
    assert await graphql(spotify_api, START, linked.owner) == {
        "startSpotifyManual": {"active": True}
    }
    await wait_until(lambda: polls(fake, linked.user_id), within=2)
    assert polls(fake, linked.user_id)[0] - started <= 1.0

    # The key expires (its TTL shortened here instead of waiting 30 minutes): no event says so.
    await redis.pexpire(manual_key(linked.account_id), 500)
    expires = time.time() + 0.5
    await asyncio.sleep(0.5 + 3 * INTERVAL)
    seen = polls(fake, linked.user_id)
    assert len([t for t in seen if t <= expires]) >= 2
    assert max(seen) <= expires + INTERVAL + SLACK
    assert (await graphql(spotify_api, NOW_PLAYING, linked.owner)) == {"spotifyNowPlaying": None}

    restarted = time.time()
    await graphql(spotify_api, START, linked.owner)
    await wait_until(lambda: max(polls(fake, linked.user_id)) > restarted, within=2)
    assert max(polls(fake, linked.user_id)) - restarted <= 1.0
    await asyncio.sleep(2 * INTERVAL)
    playing = await graphql(spotify_api, NOW_PLAYING, linked.owner)
    assert playing["spotifyNowPlaying"]["title"] == "Never Gonna Give You Up"

    stopped = time.time()
    assert await graphql(spotify_api, STOP, linked.owner) == {"stopSpotifyManual": True}
    await asyncio.sleep(3 * INTERVAL)
    assert max(polls(fake, linked.user_id)) <= stopped + INTERVAL + SLACK
    assert (await graphql(spotify_api, NOW_PLAYING, linked.owner)) == {"spotifyNowPlaying": None}


class KickClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) - timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str, KickClock]]:
    clock = KickClock()
    state = FakeKickState(clock=lambda: clock().timestamp())
    with FakeServer(kick_app(state)) as url:
        yield state, url, clock


@pytest.fixture
async def detection(
    kick: tuple[FakeKickState, str, KickClock], settings: Settings, db: asyncpg.Pool, redis: Redis
) -> AsyncIterator[PlatformPoller]:
    """The real platform worker's poller for Kick (on its own controlled clock)."""
    state, url, clock = kick
    state.reset()
    await redis.delete("lumio:budget:kick")
    kick_fake = {
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "api_base": url,
        "id_base": url,
    }
    # One channel is never a full batch: poll it as soon as it is due.
    configured = settings.updated({"kick": kick_fake, "detection": {"poll_batch_wait": 0.0}})
    async with httpx.AsyncClient() as http:
        adapter = build_adapter(Platform.KICK, configured, http)
        config = PollerConfig.from_settings(configured, Platform.KICK)
        yield PlatformPoller(adapter, db, redis, config, WorkerMetrics(), clock)


async def test_a_platform_going_live_opens_the_gate_and_offline_after_grace_closes_it(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    db: asyncpg.Pool,
    kick: tuple[FakeKickState, str, KickClock],
    detection: PlatformPoller,
) -> None:
    kick_state, _, kick_clock = kick
    linked = await link_account(spotify_api, fake, factory)
    channel = kick_state.add_channel("streamer", title="Hello", category="IRL")
    await channels.link(db, linked.account_id, Platform.KICK, channel.channel_id, "streamer")
    await db.execute("UPDATE platform_channels SET next_poll_at = $1", kick_clock())
    await workers.start()
    assert await detection.run_once() == 1
    await asyncio.sleep(2 * INTERVAL)
    assert polls(fake, linked.user_id) == []

    kick_state.set_live(channel.channel_id)
    kick_clock.advance(70)
    before_event = time.time()
    assert await detection.run_once() == 1  # went_online, published after the commit
    await wait_until(lambda: polls(fake, linked.user_id), within=2)
    assert polls(fake, linked.user_id)[0] - before_event <= 1.0

    # The stream ends: online through the grace period (Spotify polled on), then offline.
    kick_state.set_offline(channel.channel_id)
    for step in range(12):
        kick_clock.advance(20)
        polled_before = len(polls(fake, linked.user_id))
        await detection.run_once()
        if not await status.is_any_online(db, linked.account_id):
            break
        if step < 2:
            await asyncio.sleep(1.5 * INTERVAL)
            assert len(polls(fake, linked.user_id)) > polled_before, "stopped inside the grace"
    assert step >= 5, "offline only after the 120 s grace"
    assert not await status.is_any_online(db, linked.account_id)
    went_offline = time.time()
    await asyncio.sleep(3 * INTERVAL)
    assert max(polls(fake, linked.user_id)) <= went_offline + INTERVAL + SLACK


async def test_after_downtime_the_reconcile_finds_the_right_accounts_without_events(
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    db: asyncpg.Pool,
    redis: Redis,
    spotify_settings: Settings,
) -> None:
    live, manual, ended, revoked, idle = [
        await quick_link(db, fake, factory, spotify_settings) for _ in range(5)
    ]
    now = datetime.now(UTC)
    # While no worker runs (their events reach nobody):
    await status.set_online(
        db, OnlineWrite(live.account_id, Platform.TWITCH, "On", "IRL", 3, now, now)
    )
    await redis.set(manual_key(manual.account_id), "on", ex=60)
    await redis.set(manual_key(revoked.account_id), "on", ex=60)
    await publish(
        redis,
        [
            StatusEvent(live.account_id, Reason.WENT_ONLINE, now, "twitch", True),
            StatusEvent.manual(manual.account_id, Reason.MANUAL_STARTED),
        ],
    )
    # A gate left open by the worker before it went down; the stream ended meanwhile.
    await spotify_repo.set_gates(db, {ended.account_id: True}, now)
    await db.execute(
        "UPDATE spotify_connections SET status = 'needs_reauth' WHERE account_id = $1",
        revoked.account_id,
    )
    fake.reset_stats()

    worker = await workers.start()
    await asyncio.sleep(4 * INTERVAL)
    assert {r.user_id for r in fake.log()} == {live.user_id, manual.user_id}
    rows = await db.fetch("SELECT account_id, gate_open FROM spotify_connections")
    gates = {r["account_id"]: r["gate_open"] for r in rows}
    assert gates == {
        live.account_id: True,
        manual.account_id: True,
        ended.account_id: False,
        revoked.account_id: True,
        idle.account_id: False,
    }
    # No event was replayed: none of these accounts came through the listener.
    ours = {a.account_id for a in (live, manual, ended, revoked, idle)}
    assert ours.isdisjoint(worker.listener.recent)
