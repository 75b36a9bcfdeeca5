"""Polling on a controlled clock: tokens, rate limits, adaptive intervals, now playing as data,
events and history — real PostgreSQL and Redis, the fake Spotify over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from lumio.dev.fakes.spotify import CURRENTLY_PLAYING, TOKEN, FakeSpotifyState, FakeTrack
from lumio.events.schemas import channel_for
from lumio.kit.settings import Settings
from lumio.manual_connect.service import manual_key
from lumio.spotify.linking.crypto import cipher_for, token_context
from lumio.spotify.poller import worker as poller_worker
from lumio.spotify.poller.budget import BUDGET_KEY
from tests.conftest import Factory
from tests.spotify.conftest import Linked, SpotifyClock, Workers, consent, link_account

SHORT = (
    FakeTrack("track0000000000000001", "First Song", ("Band A",), "Album A", 20_000),
    FakeTrack("track0000000000000002", "Second Song", ("Band B", "Singer C"), "Album B", 30_000),
)


async def polled_account(
    api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    redis: Redis,
    tracks: tuple[FakeTrack, ...] = SHORT,
) -> Linked:
    linked = await link_account(api, fake, factory, tracks=tracks)
    await redis.set(manual_key(linked.account_id), "on", ex=600)
    fake.reset_stats()
    return linked


def requests(fake: FakeSpotifyState) -> list[tuple[str, int]]:
    return [(r.endpoint, r.status) for r in fake.log(None)]


async def stored_tokens(
    db: asyncpg.Pool, settings: Settings, account_id: UUID
) -> tuple[str, str, datetime]:
    row = await db.fetchrow(
        "SELECT access_token, refresh_token, access_expires_at FROM spotify_connections"
        " WHERE account_id = $1",
        account_id,
    )
    assert row is not None
    cipher = cipher_for(settings)
    return (
        cipher.decrypt(row["access_token"], token_context(account_id, "access")),
        cipher.decrypt(row["refresh_token"], token_context(account_id, "refresh")),
        row["access_expires_at"],
    )


async def test_tokens_are_refreshed_before_expiry_and_a_missing_refresh_token_kept(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    db: asyncpg.Pool,
    spotify_settings: Settings,
    spotify_clock: SpotifyClock,
) -> None:
    # Linked with a token that expires within the 60 s refresh margin.
    fake.access_seconds = 30
    linked = await polled_account(spotify_api, fake, factory, redis)
    first_refresh = fake.refresh_tokens(linked.user_id)
    old_access, _, _ = await stored_tokens(db, spotify_settings, linked.account_id)
    fake.access_seconds = 3600
    worker = await workers.make()
    now = spotify_clock.freeze()

    await worker.tick()
    # Refreshed first, then asked with the new token: no request ever saw a 401.
    assert requests(fake) == [(TOKEN, 200), (CURRENTLY_PLAYING, 200)]
    access, refresh, expires = await stored_tokens(db, spotify_settings, linked.account_id)
    assert access != old_access and not isinstance(fake.bearer(access), str)
    assert expires == now + timedelta(seconds=3600)
    # Spotify sent no refresh_token: the old one is kept.
    assert [refresh] == first_refresh == fake.refresh_tokens(linked.user_id)

    # Revoked early (401): one refresh, one retry; a rotated refresh token is stored.
    fake.refresh_mode = "rotate"
    fake.expire_tokens(linked.user_id)
    fake.reset_stats()
    spotify_clock.advance(1)
    await worker.tick()
    assert requests(fake) == [(CURRENTLY_PLAYING, 401), (TOKEN, 200), (CURRENTLY_PLAYING, 200)]
    _, rotated, _ = await stored_tokens(db, spotify_settings, linked.account_id)
    assert [rotated] == fake.refresh_tokens(linked.user_id) != first_refresh


async def test_a_revoked_refresh_token_ends_polling_and_shows_reauthorisation(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
) -> None:
    linked = await polled_account(spotify_api, fake, factory, redis)
    worker = await workers.make()
    spotify_clock.freeze()
    await worker.tick()
    assert requests(fake) == [(CURRENTLY_PLAYING, 200)]

    fake.revoke(linked.user_id)
    for _ in range(30):
        spotify_clock.advance(1)
        await worker.tick()
    # One 401, one refresh answered invalid_grant, then nothing: no loop.
    assert requests(fake) == [(CURRENTLY_PLAYING, 200), (CURRENTLY_PLAYING, 401), (TOKEN, 400)]

    shown = await spotify_api.get("/v1/spotify/connection", headers=linked.owner.bearer)
    body = shown.json()
    assert body["status"] == "needs_reauth" and body["needsReauthorization"] is True
    assert "Refresh token revoked" in body["statusDetail"] and body["polling"] is False
    query = "{ spotifyConnection { status needsReauthorization } spotifyNowPlaying { title } }"
    gql = await spotify_api.post("/graphql", json={"query": query}, headers=linked.owner.bearer)
    assert gql.json()["data"] == {
        "spotifyConnection": {"status": "needs_reauth", "needsReauthorization": True},
        "spotifyNowPlaying": None,
    }

    # Linking again (a new consent) brings polling back.
    spotify_clock.thaw()
    started = await spotify_api.post(
        "/v1/spotify/connection/authorize", headers=linked.owner.bearer
    )
    params = await consent(started.json()["authorizeUrl"])
    again = await spotify_api.get(
        "/v1/spotify/callback", params=params, headers=linked.owner.bearer
    )
    assert again.json()["status"] == "active"
    spotify_clock.freeze()
    fake.reset_stats()
    assert await worker.tick() == 1
    assert requests(fake) == [(CURRENTLY_PLAYING, 200)]


async def test_429_with_retry_after_5_holds_every_request_of_every_replica_for_5_s(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
) -> None:
    await polled_account(spotify_api, fake, factory, redis)
    await polled_account(spotify_api, fake, factory, redis)
    fake.reset_stats()
    one, two = await workers.make("replica-1"), await workers.make("replica-2")
    fake.retry_after = 5
    fake.fail_next(1, "429", "/v1/me/player/currently-playing")
    start = spotify_clock.freeze()
    await one.tick()
    (limited,) = [r for r in fake.log() if r.status == 429]
    assert limited.at == start.timestamp()
    sent = len(fake.log())
    for _ in range(9):
        spotify_clock.advance(0.5)
        await one.tick()
        await two.tick()
        assert len(fake.log()) == sent, "a request went out inside Retry-After"
    assert float(await redis.hget(BUDGET_KEY, "blocked_until") or 0) == start.timestamp() + 5
    spotify_clock.advance(0.5)
    await two.tick()
    resumed = fake.log()[sent:]
    assert len(resumed) == 2 and min(r.at for r in resumed) == start.timestamp() + 5


async def test_quota_exceeded_backs_off_longer_than_retry_after(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
) -> None:
    await polled_account(spotify_api, fake, factory, redis)
    worker = await workers.make()
    fake.quota_exceeded_next = 1
    start = spotify_clock.freeze()
    await worker.tick()
    assert requests(fake) == [(CURRENTLY_PLAYING, 429)]
    # Retry-After says 5 s; the quota backoff (120 s here, 15 min by default) wins.
    for _ in range(11):
        spotify_clock.advance(10)
        await worker.tick()
    assert len(fake.log()) == 1
    spotify_clock.advance(10)
    await worker.tick()
    assert [r.at for r in fake.log()][1:] == [start.timestamp() + 120]


async def next_poll_in(db: asyncpg.Pool, account_id: UUID, now: datetime) -> float:
    due: datetime = await db.fetchval(
        "SELECT next_poll_at FROM spotify_connections WHERE account_id = $1", account_id
    )
    return (due - now).total_seconds()


async def test_intervals_adapt_to_playing_paused_nothing_and_the_track_s_end(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    db: asyncpg.Pool,
    spotify_clock: SpotifyClock,
) -> None:
    linked = await polled_account(spotify_api, fake, factory, redis)
    worker = await workers.make(
        poll_playing=5.0,
        poll_paused=15.0,
        poll_idle=30.0,
    )
    spotify_clock.freeze()

    async def poll_after(seconds: float, action: str, position_ms: int | None = None) -> float:
        """Move the clock past the due time, act on the player, poll: seconds to the next poll."""
        now = spotify_clock.advance(seconds)
        fake.act(linked.user_id, action, position_ms)
        assert await worker.tick() == 1
        return await next_poll_in(db, linked.account_id, now)

    assert await poll_after(0, "play", 0) == pytest.approx(5, rel=0.06)
    # 2 s left of the track: wake just after its end rather than 5 s later.
    assert await poll_after(5.3, "play", 18_000) == pytest.approx(3, rel=0.06)
    assert await poll_after(3.2, "pause") == pytest.approx(15, rel=0.06)
    assert await poll_after(15.8, "stop") == pytest.approx(30, rel=0.06)
    assert len(fake.log()) == 4


@pytest.fixture
async def account_events(redis: Redis) -> AsyncIterator[PubSub]:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def drain(pubsub: PubSub, wait: float = 0.15) -> list[str]:
    reasons: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while (left := deadline - loop.time()) > 0:
        # None also stands for a swallowed subscribe confirmation: read on until the deadline.
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
        if message is not None:
            reasons.append(orjson.loads(message["data"])["reason"])
    return reasons


async def now_playing(api: httpx.AsyncClient, linked: Linked) -> Any:
    answer = await api.get("/v1/spotify/now-playing", headers=linked.owner.bearer)
    assert answer.status_code == 200
    return answer.json()


async def test_now_playing_as_data_with_events_on_changes_and_a_history(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
    account_events: PubSub,
) -> None:
    linked = await polled_account(spotify_api, fake, factory, redis)
    await account_events.subscribe(channel_for(linked.account_id))
    worker = await workers.make()
    spotify_clock.freeze()
    fake.act(linked.user_id, "play", position_ms=1_000)

    async def step(seconds: float) -> list[str]:
        spotify_clock.advance(seconds)
        await worker.tick()
        return await drain(account_events)

    assert await step(0) == ["now_playing_changed"]
    shown = await now_playing(spotify_api, linked)
    assert shown == {
        "kind": "track",
        "isPlaying": True,
        "itemId": "track0000000000000001",
        "title": "First Song",
        "artists": ["Band A"],
        "album": "Album A",
        "artUrl": "https://i.scdn.co/image/ab67616d0000b273fake",
        "url": "https://open.spotify.com/track/track0000000000000001",
        "progressMs": 1_000,
        "durationMs": 20_000,
        "observedAt": shown["observedAt"],
    }
    # The same track playing on: new progress, no event.
    assert await step(0.45) == []
    assert (await now_playing(spotify_api, linked))["progressMs"] == 1_450
    fake.act(linked.user_id, "pause")
    assert await step(0.45) == ["now_playing_changed"]
    assert (await now_playing(spotify_api, linked))["isPlaying"] is False
    # Resumed, and the track runs out: the next one starts by itself.
    fake.act(linked.user_id, "play")
    assert await step(0.45) == ["now_playing_changed"]
    assert await step(19) == ["now_playing_changed"]
    assert (await now_playing(spotify_api, linked))["title"] == "Second Song"
    fake.act(linked.user_id, "ad")
    assert await step(0.45) == ["now_playing_changed"]
    ad = await now_playing(spotify_api, linked)
    assert (ad["kind"], ad["title"], ad["artists"], ad["isPlaying"]) == ("ad", None, [], True)
    fake.act(linked.user_id, "episode")
    assert await step(0.45) == ["now_playing_changed"]
    episode = await now_playing(spotify_api, linked)
    assert (episode["kind"], episode["title"], episode["album"]) == (
        "episode",
        "Episode 42: Streaming",
        "The Lumio Show",
    )
    fake.act(linked.user_id, "stop")
    assert await step(0.45) == ["now_playing_changed"]
    nothing = await now_playing(spotify_api, linked)
    assert (nothing["kind"], nothing["isPlaying"], nothing["title"]) == ("nothing", False, None)
    # The gate closes (now playing is forgotten) and opens again on the same state: both said.
    await redis.delete(manual_key(linked.account_id))
    await worker.gatekeeper.evaluate([linked.account_id])
    assert await drain(account_events) == ["now_playing_changed"]
    assert await now_playing(spotify_api, linked) is None
    await redis.set(manual_key(linked.account_id), "on", ex=60)
    await worker.gatekeeper.evaluate([linked.account_id])
    assert await step(0) == ["now_playing_changed"]
    assert (await now_playing(spotify_api, linked))["kind"] == "nothing"

    history = await spotify_api.get(
        "/v1/spotify/history", params={"limit": 10}, headers=linked.owner.bearer
    )
    assert [(p["kind"], p["title"]) for p in history.json()] == [
        ("episode", "Episode 42: Streaming"),
        ("track", "Second Song"),
        ("track", "First Song"),
    ]
    query = "{ spotifyHistory(limit: 1) { title artists } spotifyNowPlaying { kind } }"
    gql = await spotify_api.post("/graphql", json={"query": query}, headers=linked.owner.bearer)
    assert gql.json()["data"] == {
        "spotifyHistory": [{"title": "Episode 42: Streaming", "artists": ["Lumio Podcasts"]}],
        "spotifyNowPlaying": {"kind": "nothing"},
    }


# What Spotify could send that PostgreSQL cannot store as is: NUL, a huge name, a huge number.
POISON = (
    FakeTrack("track0000000000000666", "Bad\u0000Song" + "x" * 5000, ("Band\u0000",), "Al", 2**40),
)


async def test_a_poisoned_track_is_stored_normalised(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
) -> None:
    linked = await polled_account(spotify_api, fake, factory, redis, tracks=POISON)
    worker = await workers.make()
    spotify_clock.freeze()
    fake.act(linked.user_id, "play")
    await worker.tick()
    shown = await now_playing(spotify_api, linked)
    assert shown["title"] == ("BadSong" + "x" * 5000)[:1000]
    assert (shown["artists"], shown["durationMs"]) == (["Band"], None)


async def test_a_row_the_database_refuses_is_isolated_by_halving_the_batch(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    spotify_clock: SpotifyClock,
    db: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Normalising switched off: the NUL reaches PostgreSQL, which refuses the batch.
    monkeypatch.setattr(poller_worker, "storable", lambda seen: seen)
    good = [await polled_account(spotify_api, fake, factory, redis) for _ in range(3)]
    bad = await polled_account(spotify_api, fake, factory, redis, tracks=POISON)
    worker = await workers.make()
    spotify_clock.freeze()
    for linked in [*good, bad]:
        fake.act(linked.user_id, "play")
    await worker.tick()
    for linked in good:
        assert (await now_playing(spotify_api, linked))["title"] == "First Song"
    errors = await db.fetch(
        "SELECT account_id, last_error FROM spotify_connections WHERE last_error IS NOT NULL"
    )
    assert [r["account_id"] for r in errors] == [bad.account_id]
    assert errors[0]["last_error"].startswith("bad_data: ")
    assert await now_playing(spotify_api, bad) is None
