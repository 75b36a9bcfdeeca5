"""`lumio dev`: the whole system in one process on embedded defaults, with a demo account.

The API (uvicorn) and the platform worker run in one event loop. Unless platform credentials are
configured (or ``--fakes/--no-fakes`` / ``LUMIO_DEV_FAKES`` say otherwise), the four fake platforms
run on loopback ports, the demo account's channels are linked on them, and a simulator makes those
channels go live, change and end by themselves; the worker detects it like real streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import httpx
from redis.asyncio import Redis

from lumio.accounts import repository as accounts_repository
from lumio.accounts import service as accounts
from lumio.auth.service import create_api_key
from lumio.channel_status import repository as channel_status
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite
from lumio.channels import repository as channels_repository
from lumio.channels.service import link_channel
from lumio.db.pool import create_pool
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.run import app_headers
from lumio.detection.wakeups import follow_wakes
from lumio.detection.worker import PlatformPoller, PollerConfig, Worker
from lumio.dev.demo import link_demo, start_dev_spotify
from lumio.dev.fakes.server import FakeServer
from lumio.dev.fakes.webhook_receiver import Inbox
from lumio.dev.fakes.webhook_receiver import create_app as receiver_app
from lumio.dev.history import seed_demo_history
from lumio.dev.simulator import DEMO_CHANNELS, Fakes, Simulator, start_fakes
from lumio.history.retention import HistoryRetention
from lumio.kit.crypto import cipher_for, key_for
from lumio.kit.errors import LumioError
from lumio.kit.permissions import Permission
from lumio.kit.principal import Credential, Principal
from lumio.kit.resources import create_redis
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter, configured_platforms
from lumio.push.reconcile import PushReconciler, build_clients
from lumio.serve import uvicorn_server
from lumio.spotify.linking.oauth import SpotifyApp
from lumio.spotify.poller.run import build_worker as build_spotify_worker
from lumio.spotify.repository import get_connection
from lumio.webhooks import service as webhooks
from lumio.webhooks.delivery import DeliveryLoop
from lumio.webhooks.schemas import WebhookIn

log = logging.getLogger(__name__)

DEMO_EMAIL = "demo@lumio.local"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - a local demo account, printed on purpose
DEMO_ACCOUNT = "Demo streamer"
# Poll the fakes often so that what the simulator does shows within seconds (unless set).
DEV_POLL_INTERVALS = {
    "poll_offline": timedelta(seconds=5),
    "poll_live": timedelta(seconds=10),
    "poll_settling": timedelta(seconds=5),
}


DEV_WEBHOOK = "lumio dev receiver"
_EVENTS = (
    "went_online",
    "went_offline",
    "stream_updated",
    "manual_started",
    "manual_stopped",
    "test",
)


@dataclass(frozen=True)
class Demo:
    account_id: UUID
    user_id: UUID
    api_key: str


async def ensure_demo(pool: asyncpg.Pool, *, seed_status: bool = True) -> Demo:
    """Create (once) the demo user and account, and a fresh API key for this run.

    ``seed_status``: give a new account two made-up status rows (for runs without any platform
    to poll); with platforms the worker writes the rows.
    """
    found = await accounts_repository.user_with_hash(pool, DEMO_EMAIL)
    if found is None:
        user_id = await accounts.create_user(pool, DEMO_EMAIL, DEMO_PASSWORD)
        account_id = await accounts.create_account(pool, DEMO_ACCOUNT, DEMO_EMAIL)
        if seed_status:
            now = datetime.now(UTC)
            await channel_status.set_online(
                pool,
                OnlineWrite(
                    account_id, Platform.TWITCH, "Demo stream: building Lumio",
                    "Software and Game Development", 42, now - timedelta(minutes=17), now,
                ),
            )  # fmt: skip
            await channel_status.set_offline(pool, OfflineWrite(account_id, Platform.YOUTUBE, now))
    else:
        user_id = found[0].id
        account_id = (await accounts_repository.memberships(pool, user_id))[0].account_id
    key = await create_api_key(pool, user_id, account_id, "lumio dev")
    return Demo(account_id, user_id, key.key)


async def link_demo_channels(
    pool: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    settings: Settings,
    account_id: UUID,
) -> list[str]:
    """Link each demo channel (resolved through its fake) on every platform the account has not
    linked yet; returns "platform: name" of each channel linked now."""
    linked = {c.platform for c in await channels_repository.list_linked(pool, account_id)}
    done: list[str] = []
    for demo in DEMO_CHANNELS:
        if demo.platform in linked:
            continue
        try:
            channel = await link_channel(
                pool, redis, http, settings, account_id, demo.platform, demo.handle
            )
        except LumioError as error:
            log.warning("could not link the demo %s channel: %s", demo.platform, error.detail)
            continue
        done.append(f"{channel.platform}: {channel.display_name}")
    return done


def wants_fakes(settings: Settings, choice: bool | None) -> bool:
    """``choice`` (from --fakes/--no-fakes or LUMIO_DEV_FAKES) or, when unset, whether no
    platform has credentials."""
    return choice if choice is not None else not configured_platforms(settings)


def dev_settings(settings: Settings, fakes: Fakes) -> Settings:
    """Settings pointing every platform at its fake, with short poll intervals unless set."""
    chosen = settings.detection.model_fields_set
    detection = {k: v for k, v in DEV_POLL_INTERVALS.items() if k not in chosen}
    # The local webhook receiver is on loopback.
    updates = {**fakes.settings_updates(), "detection": detection}
    return settings.updated(updates | {"webhooks": {"allow_private": True}})


def with_push(settings: Settings, fakes: Fakes, host: str, port: int) -> Settings:
    """Push on, with this process as the public URL: the fakes deliver to its /webhooks."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a comparison
    public_url = settings.push.public_url or f"http://{local}:{port}"
    fakes.kick.webhook_url = f"{public_url}/webhooks/kick"
    secret = settings.push.twitch_eventsub_secret or secrets.token_urlsafe(24)
    hub = f"{fakes.url(Platform.YOUTUBE)}/subscribe"
    return settings.updated(
        {
            "push": {
                "public_url": public_url,
                "twitch_eventsub_secret": secret,
                "youtube_websub_hub": hub,
            }
        }
    )


async def run_dev(
    settings: Settings,
    host: str,
    port: int,
    *,
    fakes: bool | None = None,
    simulate_every: float = 30.0,
) -> None:
    assert settings.db.url
    assert settings.redis.url
    fleet = start_fakes() if wants_fakes(settings, fakes) else None
    spotify = start_dev_spotify() if fleet is not None else None
    try:
        if fleet is not None:
            settings = with_push(dev_settings(settings, fleet), fleet, host, port)
        if spotify is not None:
            settings = settings.updated(spotify.settings_updates(settings))
        await _run(settings, host, port, fleet, simulate_every)
    finally:
        if spotify is not None:
            await asyncio.to_thread(spotify.stop)
        if fleet is not None:
            # The fakes' uvicorns share the API's loggers (now at INFO): stop them quietly.
            logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
            await asyncio.to_thread(fleet.stop)


async def _run(
    settings: Settings, host: str, port: int, fleet: Fakes | None, simulate_every: float
) -> None:
    assert settings.db.url
    assert settings.redis.url
    pool = await create_pool(
        settings.db.url, min_size=1, max_size=settings.detection.concurrency * 4 + 2
    )
    redis = create_redis(settings.redis.url, settings.redis.timeout)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    try:
        async with httpx.AsyncClient(limits=limits) as http:
            demo = await ensure_demo(pool, seed_status=fleet is None)
            if seeded := await seed_demo_history(pool, demo.account_id, datetime.now(UTC)):
                log.info("seeded %d generated stream sessions for the History view", seeded)
            simulator = None
            if fleet is not None:
                if linked := await link_demo_channels(pool, redis, http, settings, demo.account_id):
                    log.info("linked the demo channels %s", ", ".join(linked))
                # Short drops end well inside the grace period (or they would show offline), and
                # a channel rests longer than it after a stream (or the end would not show).
                graces = [settings.detection.grace, *settings.detection.grace_overrides.values()]
                simulator = Simulator(
                    fleet,
                    simulate_every,
                    max_drop=max(8.0, min(45.0, min(graces).total_seconds() / 2)),
                    min_rest=max(graces).total_seconds() + 30.0,
                )
            if fleet is not None and await get_connection(pool, demo.account_id) is None:
                # The demo's Spotify, linked through the real OAuth flow against the fake.
                await link_demo(pool, redis, http, settings, demo.account_id, demo.user_id)
            platforms = configured_platforms(settings)
            _banner(settings, host, port, demo, fleet, platforms, simulate_every)
            with contextlib.ExitStack() as stack:
                if fleet is not None:
                    await _receive_webhooks(stack, pool, settings, demo)
                await _serve(settings, host, port, pool, redis, http, platforms, simulator)
    finally:
        await redis.aclose()
        await pool.close()


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    pool: asyncpg.Pool,
    redis: Redis,
    http: httpx.AsyncClient,
    platforms: list[Platform],
    simulator: Simulator | None,
) -> None:
    """The API, the worker and the simulator, until a signal (or one of them ends)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = uvicorn_server(settings, host, port)
    metrics = WorkerMetrics()
    pollers = [
        PlatformPoller(
            build_adapter(p, settings, http),
            pool,
            redis,
            PollerConfig.from_settings(settings, p),
            metrics,
        )
        for p in platforms
    ]
    worker = Worker(pollers, settings.detection.concurrency)
    retention = HistoryRetention.from_settings(pool, settings)
    clients = build_clients(settings, http, app_headers(pollers))
    reconciler = PushReconciler(pool, redis, settings, clients, metrics)
    tasks = [
        asyncio.create_task(server.serve(), name="api"),
        asyncio.create_task(retention.start(), name="history-retention"),
    ]
    if pollers:
        tasks.append(asyncio.create_task(worker.run(), name="worker"))
        tasks.append(asyncio.create_task(follow_wakes(redis, worker), name="wakeups"))
        tasks.append(asyncio.create_task(reconciler.start(), name="push"))
    delivery = None
    if settings.webhooks.allow_private and key_for(settings) is not None:
        # As in `lumio worker`: the webhook delivery loop.
        delivery = DeliveryLoop(pool, cipher_for(settings), settings.webhooks)
        tasks.append(asyncio.create_task(delivery.start(), name="webhook-delivery"))
    spotify_worker = None
    if SpotifyApp.from_settings(settings).configured:
        spotify_worker = build_spotify_worker(pool, redis, http, settings)
        tasks.append(asyncio.create_task(spotify_worker.run(), name="spotify-worker"))
    if simulator is not None:
        tasks.append(asyncio.create_task(simulator.run(stop), name="simulator"))
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait([*tasks, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        log.info("lumio dev stopping")
        stop.set()
        server.should_exit = True
        worker.stop()
        retention.stop()
        reconciler.stop()
        if delivery is not None:
            delivery.stop()
        if spotify_worker is not None:
            spotify_worker.stop()
        results = await asyncio.gather(*tasks, stopping, return_exceptions=True)
        for poller in pollers:
            with contextlib.suppress(Exception):
                await poller.adapter.aclose()
        if spotify_worker is not None:
            with contextlib.suppress(Exception):
                await spotify_worker.poller.client.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    for task, result in zip(tasks, results, strict=False):
        if isinstance(result, Exception):
            raise RuntimeError(f"{task.get_name()} failed") from result


async def _receive_webhooks(
    stack: contextlib.ExitStack, pool: asyncpg.Pool, settings: Settings, demo: Demo
) -> None:
    """A local receiver, and a demo endpoint on it (a new one, with its secret, each run)."""
    inbox = Inbox()
    url = stack.enter_context(FakeServer(receiver_app(inbox)))
    allowed = frozenset(p.value for p in Permission)
    owner = Principal(demo.user_id, demo.account_id, allowed, Credential.API_KEY, uuid4(), b"")
    for old in await webhooks.list_for(pool, owner):
        if old.description == DEV_WEBHOOK:
            await webhooks.delete_for(pool, owner, old.id)
    body = WebhookIn(url=f"{url}/hook", description=DEV_WEBHOOK, events=list(_EVENTS))
    inbox.secret = (await webhooks.create_for(pool, settings, owner, body)).secret
    print(f"  Webhooks:  signed deliveries of the demo account arrive at {url}/\n", flush=True)


def _banner(
    settings: Settings,
    host: str,
    port: int,
    demo: Demo,
    fleet: Fakes | None,
    platforms: list[Platform],
    simulate_every: float,
) -> None:
    base = f"http://{host}:{port}"
    if fleet is not None:
        fakes = ", ".join(f"{p.value} {fleet.url(p)}" for p in fleet.servers)
        channels = ", ".join(f"{d.platform.value} {d.handle}" for d in DEMO_CHANNELS)
        poll = f"{settings.detection.poll_offline.total_seconds():g}-{settings.detection.poll_live.total_seconds():g} s"
        platform_lines = f"""
  Platforms: simulated (LUMIO_DEV_FAKES=0 or --no-fakes to turn them off)
             {fakes}
  Channels:  {channels}
             linked to the demo account; they go live, change and end by themselves
             (a change about every {simulate_every:g} s, polled every {poll}; a short drop
             stays online through the {settings.detection.grace.total_seconds():g} s grace period).
  Watch:     watch -n 2 curl -s -H 'Authorization: Bearer {demo.api_key}' {base}/v1/channel-status
"""
    elif platforms:
        names = ", ".join(p.value for p in platforms)
        platform_lines = (
            f"\n  Platforms: {names} (real; link channels with `lumio channels link`)\n"
        )
    else:
        platform_lines = (
            "\n  Platforms: none configured (set credentials, or LUMIO_DEV_FAKES=1 for simulated"
            " ones); the status rows are made up.\n"
        )
    print(
        f"""Dashboard: {base}/ — sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}

Lumio is running on embedded PostgreSQL and Redis (data in {settings.data_dir}/).

  API key:   {demo.api_key}
  Try:       curl -H 'Authorization: Bearer {demo.api_key}' {base}/v1/channel-status
  GraphQL:   {base}/graphql    OpenAPI: {base}/openapi.json    Docs: {base}/docs
{platform_lines}""",
        flush=True,
    )
