"""`lumio worker`'s push reconciler: the platforms' subscriptions kept equal to the linked channels.

Each run adds a row per missing (channel, topic), claims rows that need the platform (new,
failed, revoked, stuck, a lease running out, or unlinked) under a lease shared through
PostgreSQL, so two replicas never create the same subscription, and talks to the platform for
each. Every ``list_every`` one replica (a Redis lock) compares the platform's own list with the
table: subscriptions we do not know are deleted there, ours that are gone are recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

import asyncpg
import httpx
from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.kit.clock import Clock, backoff_seconds, utc_now
from lumio.kit.loops import LoopService
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.push import repository, youtube
from lumio.push.kick import KickEventsClient
from lumio.push.schemas import TOPICS, SubscriptionResult, SubscriptionWork
from lumio.push.service import COUNTS_KEY, callback_url, push_platforms
from lumio.push.twitch import EventSubClient, HeaderSource, SubscriptionConflict

log = logging.getLogger(__name__)


class PushMetrics(Protocol):
    """The worker's gauges this loop exports (``detection.metrics.WorkerMetrics`` has them;
    push does not import detection, which imports push)."""

    @property
    def push_subscriptions(self) -> Gauge: ...

    @property
    def push_messages(self) -> Gauge: ...


CLAIM_LIMIT = 50
# Requests to the platforms at once per replica.
CONCURRENCY = 8
LIST_LOCK = "lumio:push:list-lock"
RETRY_BASE = 30.0
RETRY_CAP = 3600.0


@dataclass(frozen=True, slots=True)
class PushClients:
    twitch: EventSubClient | None = None
    kick: KickEventsClient | None = None
    hub: youtube.HubClient | None = None


def build_clients(
    settings: Settings, http: httpx.AsyncClient, headers: dict[Platform, HeaderSource]
) -> PushClients:
    platforms = push_platforms(settings)
    twitch = headers.get(Platform.TWITCH) if Platform.TWITCH in platforms else None
    kick = headers.get(Platform.KICK) if Platform.KICK in platforms else None
    return PushClients(
        twitch=EventSubClient(http, settings.twitch.api_base, twitch) if twitch else None,
        kick=KickEventsClient(http, settings.kick.api_base, kick) if kick else None,
        hub=youtube.HubClient(http, settings.push.youtube_websub_hub)
        if Platform.YOUTUBE in platforms
        else None,
    )


class PushReconciler(LoopService):
    name = "push-reconcile"

    def __init__(
        self,
        db: asyncpg.Pool,
        redis: Redis,
        settings: Settings,
        clients: PushClients,
        metrics: PushMetrics | None = None,
        *,
        interval: timedelta = timedelta(seconds=5),
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(interval)
        self.db = db
        self.redis = redis
        self.settings = settings
        self.clients = clients
        self.metrics = metrics
        self.clock = clock
        self.platforms = sorted(
            p for p in push_platforms(settings) if self._client_of(p) is not None
        )
        self.list_every = timedelta(seconds=settings.push.push_reconcile_seconds)
        self._listed_at: datetime | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def run_once(self) -> timedelta | None:
        if not self.platforms:
            return None
        await repository.add_missing(self.db, {p: TOPICS[p] for p in self.platforms})
        now, token = self.clock(), uuid4()
        await repository.lapse(self.db, self.platforms, now)
        work = await repository.claim_work(
            self.db, self.platforms, now, CLAIM_LIMIT, token, youtube.RENEW_BEFORE_SECONDS
        )
        await asyncio.gather(*(self._handle(item, token) for item in work))
        await self._compare_lists()
        await self._export_metrics()
        # A full claim: more work is waiting.
        return timedelta(0) if len(work) == CLAIM_LIMIT else None

    def _client_of(self, platform: Platform) -> object | None:
        return {
            Platform.TWITCH: self.clients.twitch,
            Platform.KICK: self.clients.kick,
            Platform.YOUTUBE: self.clients.hub,
        }.get(platform)

    # --- one subscription ---

    async def _handle(self, item: SubscriptionWork, token: UUID) -> None:
        async with self._slots:
            try:
                if not item.linked:
                    await self._remove(item)
                    await repository.delete_claimed(self.db, item.key, token)
                    return
                result = await self._subscribe(item)
            except (httpx.HTTPError, SubscriptionConflict, KeyError, ValueError, TypeError) as exc:
                # A conflict: Twitch has one we lost track of; the list comparison deletes it.
                result = self._failed(item, exc)
            await repository.finish(self.db, result, token)

    async def _remove(self, item: SubscriptionWork) -> None:
        key = item.key
        if key.platform is Platform.YOUTUBE and self.clients.hub is not None:
            await self.clients.hub.request(
                "unsubscribe", key.channel_id, callback_url(self.settings, key.platform), ""
            )
        elif item.external_id is not None:
            await self._delete_at_platform(key.platform, item.external_id)

    async def _delete_at_platform(self, platform: Platform, external_id: str) -> None:
        if platform is Platform.TWITCH and self.clients.twitch is not None:
            await self.clients.twitch.delete(external_id)
        elif platform is Platform.KICK and self.clients.kick is not None:
            await self.clients.kick.delete(external_id)

    async def _subscribe(self, item: SubscriptionWork) -> SubscriptionResult:
        key = item.key
        callback = callback_url(self.settings, key.platform)
        now = self.clock()
        if key.platform is Platform.YOUTUBE and self.clients.hub is not None:
            secret = await repository.installation_secret(self.db, Platform.YOUTUBE)
            await self.clients.hub.request("subscribe", key.channel_id, callback, secret)
            status = "enabled" if item.status == "enabled" else "pending"
            external = youtube.topic_for(key.channel_id)
            return SubscriptionResult(key, status, external, None, 0, now + timedelta(hours=1))
        if item.external_id is not None:
            # Failed, revoked or stuck: the old one goes before a new one is made.
            with contextlib.suppress(httpx.HTTPError):
                await self._delete_at_platform(key.platform, item.external_id)
        if key.platform is Platform.TWITCH and self.clients.twitch is not None:
            secret = self.settings.push.twitch_eventsub_secret
            created = await self.clients.twitch.create(key.topic, key.channel_id, callback, secret)
            # Enabled when Twitch's challenge comes back to the receiver.
            return SubscriptionResult(key, "pending", created, None, 0, now)
        if key.platform is Platform.KICK and self.clients.kick is not None:
            created = await self.clients.kick.create(key.topic, key.channel_id)
            return SubscriptionResult(key, "enabled", created, None, 0, now)
        raise ValueError(f"no push client for {key.platform}")

    def _failed(self, item: SubscriptionWork, error: Exception) -> SubscriptionResult:
        attempts = item.attempts + 1
        log.warning("push subscription %s failed (%d): %s", item.key, attempts, error)
        wait = timedelta(seconds=RETRY_BASE + backoff_seconds(attempts, RETRY_BASE, RETRY_CAP))
        return SubscriptionResult(
            item.key, "failed", item.external_id, str(error)[:500], attempts, self.clock() + wait
        )

    # --- the platform's own list ---

    async def _compare_lists(self) -> None:
        now = self.clock()
        if self._listed_at is not None and now - self._listed_at < self.list_every:
            return
        self._listed_at = now
        if not await self._take_list_lock():
            return
        for platform, client in (
            (Platform.TWITCH, self.clients.twitch),
            (Platform.KICK, self.clients.kick),
        ):
            if client is not None:
                try:
                    await self._compare(platform, await client.list_all())
                except httpx.HTTPError as exc:
                    log.warning("listing %s subscriptions failed: %s", platform, exc)

    async def _take_list_lock(self) -> bool:
        seconds = max(1, int(self.list_every.total_seconds() * 0.9))
        try:
            return bool(await self.redis.set(LIST_LOCK, b"1", nx=True, ex=seconds))
        except (RedisError, OSError):
            return False

    async def _compare(self, platform: Platform, listed: list[dict[str, Any]]) -> None:
        ours = await repository.external_ids(self.db, platform)
        callback = callback_url(self.settings, platform)
        enabled = [str(s["id"]) for s in listed if _enabled_there(s)]
        for subscription in listed:
            if str(subscription["id"]) not in ours and _aimed_at(subscription, callback):
                with contextlib.suppress(httpx.HTTPError):
                    await self._delete_at_platform(platform, str(subscription["id"]))
        missing = await repository.mark_missing(self.db, platform, enabled, self.clock())
        if missing:
            log.warning("%d %s subscriptions were missing at the platform", missing, platform)

    async def _export_metrics(self) -> None:
        if self.metrics is None:
            return
        for (platform, status), count in (await repository.count_by_status(self.db)).items():
            self.metrics.push_subscriptions.labels(platform, status).set(count)
        with contextlib.suppress(RedisError, OSError):
            for field, value in (await self.redis.hgetall(COUNTS_KEY)).items():
                name = field.decode() if isinstance(field, bytes) else str(field)
                platform, _, outcome = name.partition(":")
                self.metrics.push_messages.labels(platform, outcome).set(int(value))


def _enabled_there(subscription: dict[str, Any]) -> bool:
    # Kick lists no status: a listed subscription is a working one.
    return bool(subscription.get("status", "enabled") == "enabled")


def _aimed_at(subscription: dict[str, Any], callback: str) -> bool:
    """A subscription of this installation's callback (Kick has one URL per app: all are)."""
    transport = subscription.get("transport")
    return not isinstance(transport, dict) or bool(transport.get("callback") == callback)
