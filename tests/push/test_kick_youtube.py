"""Kick webhooks and YouTube WebSub end to end: fake platform → the API's receiver → the worker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg
import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.asyncio import Redis

from lumio.api.app import create_app
from lumio.channels import repository as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.wakeups import follow_wakes
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.dev.fakes.kick import PUBLIC_KEY_PATH, FakeKickState, kick_signature
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer, free_port
from lumio.dev.fakes.youtube import DEFAULT_API_KEY, FakeYouTubeState
from lumio.dev.fakes.youtube import create_app as youtube_app
from lumio.kit.errors import LumioError
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.kick import KickAdapter
from lumio.platforms.registry import build_adapter
from lumio.push import kick as kick_push
from lumio.push import repository, service
from lumio.push.kick import PublicKeyCache
from lumio.push.reconcile import PushReconciler, build_clients
from lumio.push.schemas import TOPICS
from lumio.push.twitch import HeaderSource
from lumio.push.youtube import topic_for
from tests.conftest import Factory, Member
from tests.waiting import eventually

# Signs Kick's "id.timestamp.body" (the fake's current key, or a key that is not Kick's).
Signer = Callable[[str, str, bytes], str]
FAST = {
    "poll_offline": timedelta(seconds=60),
    "poll_settling": timedelta(seconds=0.5),
    "poll_batch_wait": timedelta(0),
}


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str]]:
    state = FakeKickState()
    with FakeServer(kick_app(state)) as url:
        yield state, url
    state.push.close()


@pytest.fixture(scope="module")
def youtube() -> Iterator[tuple[FakeYouTubeState, str]]:
    state = FakeYouTubeState()
    with FakeServer(youtube_app(state)) as url:
        yield state, url
    state.push.close()


@pytest.fixture(scope="module")
def both(
    settings: Settings, kick: tuple[FakeKickState, str], youtube: tuple[FakeYouTubeState, str]
) -> Iterator[tuple[Settings, str]]:
    port = free_port()
    configured = settings.updated(
        {
            "detection": FAST,
            "push": {
                "public_url": f"http://127.0.0.1:{port}",
                "poll_offline_with_push_seconds": 60.0,
                "youtube_websub_hub": f"{youtube[1]}/subscribe",
            },
            "kick": {
                "client_id": kick[0].client_id,
                "client_secret": kick[0].client_secret,
                "api_base": kick[1],
                "id_base": kick[1],
            },
            "youtube": {
                "api_key": DEFAULT_API_KEY,
                "api_base": youtube[1],
                "feed_base": youtube[1],
            },
        }
    )
    kick[0].webhook_url = f"{configured.push.public_url}/webhooks/kick"
    with FakeServer(create_app(configured), port=port, lifespan="on") as url:
        yield configured, url


@contextlib.asynccontextmanager
async def running(
    settings: Settings, db: asyncpg.Pool, redis: Redis, platform: Platform
) -> AsyncIterator[None]:
    async with httpx.AsyncClient() as http:
        adapter = build_adapter(platform, settings, http)
        metrics = WorkerMetrics()
        worker = Worker(
            [
                PlatformPoller(
                    adapter, db, redis, PollerConfig.from_settings(settings, platform), metrics
                )
            ]
        )
        headers: dict[Platform, HeaderSource] = {}
        if isinstance(adapter, KickAdapter):
            headers[platform] = adapter.app_headers
        clients = build_clients(settings, http, headers)
        reconciler = PushReconciler(
            db, redis, settings, clients, metrics, interval=timedelta(seconds=0.2)
        )
        tasks = [
            asyncio.create_task(worker.run()),
            asyncio.create_task(follow_wakes(redis, worker)),
            asyncio.create_task(reconciler.start()),
        ]
        try:
            yield
        finally:
            worker.stop()
            reconciler.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)


async def enabled(db: asyncpg.Pool, count: int) -> bool:
    found = await db.fetchval("SELECT count(*) FROM push_subscriptions WHERE status = 'enabled'")
    return bool(found == count)


async def went_online(redis: Redis, account: object, seconds: float) -> int:
    events = redis.pubsub()
    await events.subscribe(f"lumio:channel_status:{account}")
    try:
        loop = asyncio.get_running_loop()
        deadline, found = loop.time() + seconds, 0
        while (left := deadline - loop.time()) > 0:
            message = await events.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None and orjson.loads(message["data"])["reason"] == "went_online":
                found += 1
                deadline = min(deadline, loop.time() + 0.5)
        return found
    finally:
        await events.aclose()  # type: ignore[no-untyped-call]


async def test_kick_webhook_is_a_hint_and_bad_signatures_are_refused(
    both: tuple[Settings, str],
    kick: tuple[FakeKickState, str],
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> None:
    settings, api_url = both
    state = kick[0]
    channel = state.add_channel(f"kicky{free_port()}")
    account, _ = await factory.account()
    await channels.link(db, account, Platform.KICK, channel.channel_id, channel.name)
    async with running(settings, db, redis, Platform.KICK):
        await eventually(lambda: enabled(db, 2), 10)
        assert len(state.subscriptions()) == 2
        await asyncio.sleep(0.5)
        listen = asyncio.create_task(went_online(redis, account, 3.0))
        await asyncio.sleep(0.1)
        state.set_live(channel.channel_id)
        # The poll-only interval is 60 s here: only the webhook can make it this fast.
        assert await listen == 1
        assert await db.fetchval("SELECT count(*) FROM push_hints") == 1
        # A message signed with another key is refused.
        body = b'{"broadcaster":{"user_id":%s},"is_live":true}' % channel.channel_id.encode()
        headers = {
            "Kick-Event-Message-Id": "01J0000000000000000000000X",
            "Kick-Event-Message-Timestamp": "2026-12-02T06:00:00Z",
            "Kick-Event-Signature": base64.b64encode(b"x" * 256).decode(),
            "Kick-Event-Type": "livestream.status.updated",
        }
        async with httpx.AsyncClient(base_url=api_url) as http:
            answer = await http.post("/webhooks/kick", headers=headers, content=body)
        assert answer.status_code == 403
        # Unlinking deletes the subscriptions at Kick.
        await channels.unlink(db, account, Platform.KICK)
        await eventually(lambda: _no_kick_subscriptions(state), 5)


async def _no_kick_subscriptions(state: FakeKickState) -> bool:
    return not state.subscriptions()


async def test_youtube_websub_makes_the_video_a_candidate(
    both: tuple[Settings, str],
    youtube: tuple[FakeYouTubeState, str],
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> None:
    settings, api_url = both
    state = youtube[0]
    channel = state.add_channel()
    account, _ = await factory.account()
    await channels.link(db, account, Platform.YOUTUBE, channel.channel_id, channel.title)
    async with running(settings, db, redis, Platform.YOUTUBE):
        await eventually(lambda: enabled(db, 1), 10)
        expires = await db.fetchval("SELECT expires_at FROM push_subscriptions")
        assert expires is not None
        await asyncio.sleep(0.5)
        listen = asyncio.create_task(went_online(redis, account, 3.0))
        await asyncio.sleep(0.1)
        state.go_live(channel.channel_id, title="Live via WebSub")
        assert await listen == 1
        # A notification with a bad signature: refused, nothing recorded.
        hinted = await db.fetchval("SELECT hinted_at FROM push_hints")
        state.push.switch("bad_signature")
        state.upload(channel.channel_id, "another")
        await eventually(lambda: _saw(state, "403"), 3)
        assert await db.fetchval("SELECT hinted_at FROM push_hints") == hinted
    # The hub's intent check for a topic nobody asked for is not answered.
    async with httpx.AsyncClient(base_url=api_url) as http:
        params = {
            "hub.mode": "subscribe",
            "hub.topic": "https://www.youtube.com/xml/feeds/videos.xml?channel_id=UCnobody",
            "hub.challenge": "abc",
        }
        answer = await http.get("/webhooks/youtube", params=params)
    assert answer.status_code == 404


async def _saw(state: FakeYouTubeState, outcome: str) -> bool:
    return state.push.outcomes[outcome] >= 1


class Clock:
    """Real time plus jumps: it stays in step with PostgreSQL's now() and the API's clock, which
    stamp the rows too, and leaps over what would otherwise take hours."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


async def kick_answer(ctx: service.PushContext, channel_id: str, sign: Signer) -> int:
    """The receiver's status for one status message of ``channel_id`` signed by ``sign``."""
    body = b'{"broadcaster":{"user_id":%s},"is_live":true}' % channel_id.encode()
    message_id = uuid.uuid4().hex.upper()[:26]
    timestamp = ctx.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "Kick-Event-Message-Id": message_id,
        "Kick-Event-Message-Timestamp": timestamp,
        "Kick-Event-Signature": sign(message_id, timestamp, body),
        "Kick-Event-Type": "livestream.status.updated",
    }
    try:
        return (await service.receive_kick(ctx, headers, body)).status
    except LumioError as error:
        return error.status_code


async def test_kick_key_rotation_is_fetched_and_forgeries_fetch_at_most_once_a_window(
    both: tuple[Settings, str], db: asyncpg.Pool, redis: Redis, factory: Factory
) -> None:
    # Its own fake Kick: the rotated key must not leak into the other tests' receiver.
    state = FakeKickState()
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    channel = state.add_channel("rotating")
    account, _ = await factory.account()
    await channels.link(db, account, Platform.KICK, channel.channel_id, channel.name)
    await repository.add_missing(db, {Platform.KICK: TOPICS[Platform.KICK]})
    with FakeServer(kick_app(state)) as url:
        settings = both[0].updated({"kick": {"api_base": url}})
        clock, window = Clock(), kick_push.REFRESH_EVERY
        async with httpx.AsyncClient() as http:
            ctx = service.PushContext(db, redis, settings, http, PublicKeyCache(), clock)

            def fetches() -> int:
                return state.requests(f"GET {PUBLIC_KEY_PATH}")

            async def forged() -> int:
                return await kick_answer(ctx, channel.channel_id, partial(kick_signature, forger))

            assert await kick_answer(ctx, channel.channel_id, state.sign) == 204
            assert fetches() == 1
            # Kick rotates later on: the first message with the new key fetches it once.
            state.rotate_key()
            clock.advance(10 * window)
            assert await kick_answer(ctx, channel.channel_id, state.sign) == 204
            assert await kick_answer(ctx, channel.channel_id, state.sign) == 204
            assert fetches() == 2
            # Forgeries are refused; within the window after a fetch none asks Kick again.
            assert [await forged() for _ in range(5)] == [403] * 5
            assert fetches() == 2
            # After it, one forgery may check for a newer key; the next ones may not.
            clock.advance(window)
            assert [await forged() for _ in range(3)] == [403] * 3
            assert fetches() == 3


async def leases(db: asyncpg.Pool) -> dict[str, tuple[str, datetime]]:
    rows = await db.fetch("SELECT channel_id, status, expires_at FROM push_subscriptions")
    return {r["channel_id"]: (r["status"], r["expires_at"]) for r in rows}


async def test_a_youtube_lease_ending_within_a_day_is_renewed_and_a_far_one_is_not(
    both: tuple[Settings, str],
    youtube: tuple[FakeYouTubeState, str],
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> None:
    settings, state, clock = both[0], youtube[0], Clock()
    far, near = state.add_channel(), state.add_channel()
    callback = f"{settings.push.public_url}/webhooks/youtube"
    async with httpx.AsyncClient() as http:
        clients = build_clients(settings, http, {})
        reconciler = PushReconciler(db, redis, settings, clients, clock=clock)
        try:
            # The hub grants one channel the full lease and, busy, the other only 6 hours.
            await subscribe_youtube(reconciler, db, factory, far.channel_id, 1)
            state.hub_max_lease_seconds = 6 * 3600
            await subscribe_youtube(reconciler, db, factory, near.channel_id, 2)
        finally:
            state.hub_max_lease_seconds = None
        before, asked = await leases(db), len(state.hub_requests)
        # Past the reconciler's retry time of a fresh subscription, hours before the short lease
        # ends: only it is renewed, with the same callback and topic.
        clock.advance(timedelta(hours=2))
        await reconciler.run_once()
        assert state.hub_requests[asked:] == [("subscribe", callback, topic_for(near.channel_id))]
        await eventually(lambda: renewed(db, near.channel_id, before), 5)
        after = await leases(db)
        assert after[far.channel_id] == before[far.channel_id]
        assert after[near.channel_id][0] == "enabled"
        # Renewed for the full lease now: the next runs leave both alone.
        clock.advance(timedelta(hours=2))
        await reconciler.run_once()
        assert len(state.hub_requests) == asked + 1


async def subscribe_youtube(
    reconciler: PushReconciler, db: asyncpg.Pool, factory: Factory, channel_id: str, total: int
) -> Member:
    account, owner = await factory.account()
    await channels.link(db, account, Platform.YOUTUBE, channel_id, channel_id)
    await reconciler.run_once()
    await eventually(lambda: enabled(db, total), 5)
    return owner


async def renewed(
    db: asyncpg.Pool, channel_id: str, before: dict[str, tuple[str, datetime]]
) -> bool:
    # The hub's verification of the renewal moves the lease end forward (to ~10 days).
    status, expires = (await leases(db))[channel_id]
    return status == "enabled" and expires > before[channel_id][1] + timedelta(days=5)


# The offline interval of a push-covered channel in offline_delay's poller (FAST's is 60 s).
PUSHED = timedelta(seconds=300)


@pytest.mark.parametrize("verifies", [False, True], ids=["silent_hub", "verifying_hub"])
async def test_a_youtube_lease_that_ends_without_a_verified_renewal_is_no_longer_push_covered(
    both: tuple[Settings, str],
    youtube: tuple[FakeYouTubeState, str],
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
    verifies: bool,
) -> None:
    (settings, api_url), state, clock = both, youtube[0], Clock()
    channel = state.add_channel()
    async with httpx.AsyncClient() as http:
        reconciler = PushReconciler(
            db, redis, settings, build_clients(settings, http, {}), clock=clock
        )
        try:
            # A 6-hour lease, then a hub that takes the renewal (202) and verifies it, or not.
            state.hub_max_lease_seconds = 6 * 3600
            owner = await subscribe_youtube(reconciler, db, factory, channel.channel_id, 1)
            state.hub_max_lease_seconds, state.hub_verifies = None, verifies
            before, asked = await leases(db), len(state.hub_requests)
            clock.advance(timedelta(hours=2))
            await reconciler.run_once()
            assert len(state.hub_requests) == asked + 1
            if verifies:
                await eventually(lambda: renewed(db, channel.channel_id, before), 5)
            # The lease still runs: push covers the channel either way.
            assert await push_status(api_url, owner) == "enabled"
            # Past the 6-hour lease end.
            clock.advance(timedelta(hours=5))
            await reconciler.run_once()
        finally:
            state.hub_max_lease_seconds, state.hub_verifies = None, True
        status = await push_status(api_url, owner)
        delay = await offline_delay(settings, db, redis, clock, channel.channel_id)
    # A verified renewal keeps push; an unverified one lapses, and with it the slower poll.
    assert status == ("enabled" if verifies else "pending")
    assert (delay > PUSHED / 2) is verifies


async def push_status(api_url: str, owner: Member) -> str:
    async with httpx.AsyncClient(base_url=api_url) as http:
        listed = await http.get("/v1/channels", headers=owner.bearer)
    (channel,) = listed.json()
    return str(channel["pushStatus"])


async def offline_delay(
    settings: Settings, db: asyncpg.Pool, redis: Redis, clock: Clock, channel_id: str
) -> timedelta:
    """How long after one worker pass at ``clock`` the offline channel is due again."""
    settings = settings.updated({"push": {"poll_offline_with_push_seconds": PUSHED.seconds}})
    async with httpx.AsyncClient() as http:
        adapter = build_adapter(Platform.YOUTUBE, settings, http)
        config = PollerConfig.from_settings(settings, Platform.YOUTUBE)
        poller = PlatformPoller(adapter, db, redis, config, WorkerMetrics(), clock)
        assert await poller.run_once() == 1
    due: datetime = await db.fetchval(
        "SELECT next_poll_at FROM platform_channels WHERE channel_id = $1", channel_id
    )
    return due - clock()
