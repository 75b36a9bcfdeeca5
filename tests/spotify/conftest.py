"""Fixtures for the Spotify tests: one fake Spotify over loopback for the session (reset for each
test), an API configured for it, links made through the real OAuth flow, and workers on a clock
that runs in real time or stands still and moves only when a test says so."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from lumio.api.app import create_app
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.spotify import DEMO_TRACKS, FakeSpotifyState, FakeTrack
from lumio.dev.fakes.spotify import create_app as spotify_fake_app
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.manual_connect.service import manual_key
from lumio.spotify import repository
from lumio.spotify.linking.crypto import cipher_for, new_key
from lumio.spotify.linking.oauth import SpotifyApp
from lumio.spotify.poller.budget import BUDGET_KEY
from lumio.spotify.poller.client import SpotifyClient
from lumio.spotify.poller.worker import SpotifyWorker, SpotifyWorkerConfig
from lumio.spotify.schemas import NewLink, SpotifyProfile
from tests.conftest import Factory, Member

TOKEN_KEY = new_key()
# Short intervals keep the real-time tests fast; "one interval" below means this.
INTERVAL = 0.3


class SpotifyClock:
    """Real time, until a test freezes it; then it moves only by ``advance``."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def epoch(self) -> float:
        return self().timestamp()

    def freeze(self) -> datetime:
        self.fixed = datetime.now(UTC)
        return self.fixed

    def advance(self, seconds: float) -> datetime:
        assert self.fixed is not None, "freeze the clock first"
        self.fixed += timedelta(seconds=seconds)
        return self.fixed

    def thaw(self) -> None:
        self.fixed = None


@pytest.fixture(scope="session")
def spotify_clock() -> SpotifyClock:
    return SpotifyClock()


@pytest.fixture(scope="session")
def fake_server(spotify_clock: SpotifyClock) -> Iterator[tuple[FakeSpotifyState, str]]:
    state = FakeSpotifyState(clock=spotify_clock.epoch)
    with FakeServer(spotify_fake_app(state)) as url:
        yield state, url


@pytest.fixture
def fake(
    fake_server: tuple[FakeSpotifyState, str], spotify_clock: SpotifyClock
) -> Iterator[FakeSpotifyState]:
    spotify_clock.thaw()
    state = fake_server[0]
    state.reset()
    yield state
    spotify_clock.thaw()


@pytest.fixture(scope="session")
def spotify_settings(settings: Settings, fake_server: tuple[FakeSpotifyState, str]) -> Settings:
    state, url = fake_server
    spotify = {
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "accounts_base": url,
        "api_base": url,
        "token_key": TOKEN_KEY,
        "poll_playing": INTERVAL,
        "poll_paused": INTERVAL,
        "poll_idle": INTERVAL,
        "refresh_margin": 60.0,
        "quota_backoff": 120.0,
        "lease": 2.0,
        "timeout": 2.0,
    }
    return settings.updated({"spotify": spotify, "platform_timeout": timedelta(seconds=2)})


@pytest.fixture(scope="session")
async def spotify_app(spotify_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(spotify_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def spotify_api(spotify_app: FastAPI, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=spotify_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as client:
        yield client


@pytest.fixture(autouse=True)
async def _no_app_wide_block(redis_url: str) -> AsyncIterator[None]:
    """The budget key is app-wide: one test's 429 must not hold the next test's requests."""
    client = create_redis(redis_url)
    await client.delete(BUDGET_KEY)
    yield
    await client.delete(BUDGET_KEY)
    await client.aclose()


@dataclass(frozen=True)
class Linked:
    account_id: UUID
    owner: Member
    user_id: str


async def link_account(
    api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    user_id: str | None = None,
    tracks: tuple[FakeTrack, ...] = DEMO_TRACKS,
    manual_connect: Redis | None = None,
) -> Linked:
    """An account linked through the real OAuth flow: authorize, the fake's consent, callback.

    ``manual_connect``: switch manual connect on (in this Redis) first, so the link opens the gate.
    """
    account_id, owner = await factory.account()
    if manual_connect is not None:
        await manual_connect.set(manual_key(account_id), "on", ex=300)
    user = fake.add_user(user_id, tracks=tracks)
    fake.consent_user = user.user_id
    started = await api.post("/v1/spotify/connection/authorize", headers=owner.bearer)
    assert started.status_code == 200, started.text
    params = await consent(started.json()["authorizeUrl"])
    done = await api.get("/v1/spotify/callback", params=params, headers=owner.bearer)
    assert done.status_code == 200, done.text
    return Linked(account_id, owner, user.user_id)


async def quick_link(
    db: asyncpg.Pool,
    fake: FakeSpotifyState,
    factory: Factory,
    settings: Settings,
    manual_connect: Redis | None = None,
) -> Linked:
    """An account linked straight in the database (tokens the fake knows): for tests that need
    many links and test something else than linking."""
    account_id, owner = await factory.account()
    if manual_connect is not None:
        await manual_connect.set(manual_key(account_id), "on", ex=300)
    user = fake.add_user()
    access, refresh = f"access-{uuid4().hex}", f"refresh-{uuid4().hex}"
    fake.grant_tokens(user.user_id, access, refresh)
    access_ct, refresh_ct = cipher_for(settings).encrypt_pair(account_id, access, refresh)
    now = datetime.now(UTC)
    link = NewLink(
        account_id=account_id,
        profile=SpotifyProfile(user.user_id, None),
        scope="user-read-currently-playing",
        access_token=access_ct,
        refresh_token=refresh_ct,
        access_expires_at=now + timedelta(hours=1),
        linked_by=owner.user_id,
        gate_open=manual_connect is not None,
        linked_at=now,
    )
    await repository.link(db, link)
    return Linked(account_id, owner, user.user_id)


async def consent(authorize_url: str) -> dict[str, str]:
    """Follow the authorize URL like a browser; the query Spotify sends back to the callback."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorize_url)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


@dataclass
class Workers:
    """Builds workers (replicas) and runs them; stops and closes everything at the end."""

    settings: Settings
    db: asyncpg.Pool
    redis_url: str
    clock: SpotifyClock
    running: list[tuple[SpotifyWorker, asyncio.Task[None]]] = field(default_factory=list)
    closers: list[Any] = field(default_factory=list)

    async def make(self, agent: str = "replica-1", **overrides: Any) -> SpotifyWorker:
        settings = self.settings.updated({"spotify": overrides})
        redis = create_redis(self.redis_url)
        http = httpx.AsyncClient(timeout=settings.spotify.timeout.total_seconds())
        self.closers += [redis.aclose, http.aclose]
        client = SpotifyClient(http, SpotifyApp.from_settings(settings), agent, timeout=2.0)
        self.closers.append(client.aclose)
        config = SpotifyWorkerConfig.from_settings(settings)
        return SpotifyWorker(self.db, redis, client, cipher_for(settings), config, clock=self.clock)

    async def start(self, agent: str = "replica-1", **overrides: Any) -> SpotifyWorker:
        worker = await self.make(agent, **overrides)
        task = asyncio.create_task(worker.run())
        self.running.append((worker, task))
        # Running once it listens (and has reconciled).
        await asyncio.wait_for(worker.listener.subscribed.wait(), 5)
        return worker

    async def stop(self, worker: SpotifyWorker) -> None:
        for running, task in list(self.running):
            if running is worker:
                worker.stop()
                await asyncio.wait_for(task, 10)
                self.running.remove((running, task))

    async def close(self) -> None:
        for worker, _ in list(self.running):
            with contextlib.suppress(Exception):
                await self.stop(worker)
        for close in self.closers:
            await close()


@pytest.fixture
async def workers(
    spotify_settings: Settings, db: asyncpg.Pool, redis_url: str, spotify_clock: SpotifyClock
) -> AsyncIterator[Workers]:
    rig = Workers(spotify_settings, db, redis_url, spotify_clock)
    yield rig
    await rig.close()


async def wait_until(check: Any, within: float = 5.0, step: float = 0.02) -> float:
    """Poll ``check()`` until truthy; returns the loop time it became so. Fails after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(step)
    return loop.time()


def polls(fake: FakeSpotifyState, user_id: str) -> list[float]:
    """When the fake answered currently-playing for the user (epoch seconds)."""
    return [r.at for r in fake.log() if r.user_id == user_id]
