"""One pattern subscription per API process, fanned out in-process to its live streams.

A Redis connection per stream let one credential take the whole request pool (issue 10). The
hub subscribes once, on a Redis client of its own (outside the request pool), to
``lumio:channel_status:*`` and hands each message to the streams of that account. It counts
open streams per credential and per process; past either cap ``open`` raises TooManyRequests
(429 with Retry-After). A lost subscription is retried by ``follow`` with jittered backoff and
logged once per outage; every stream sees LOST, then SUBSCRIBED (its ``resync``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator
from datetime import timedelta
from uuid import UUID

from redis.asyncio import Redis

from lumio.events.schemas import CHANNEL_PATTERN, CHANNEL_PREFIX
from lumio.kit.errors import TooManyRequests
from lumio.kit.loops import LoopService
from lumio.kit.pubsub import IDLE, Kind, Received, follow

# Seconds a refused stream is told to wait before trying again.
RETRY_AFTER = 5
# Messages a stream may fall behind before it is told to resync instead.
QUEUE_SIZE = 256

_RESYNC = Received(Kind.SUBSCRIBED)


class Subscription:
    """One stream's share of the hub: the account's messages and the hub's state changes."""

    def __init__(self, hub: LiveHub, account_id: UUID, credential: bytes) -> None:
        self.hub = hub
        self.account_id = account_id
        self.credential = credential
        self.queue: asyncio.Queue[Received] = asyncio.Queue(QUEUE_SIZE)
        self.closed = False

    def deliver(self, item: Received) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Too slow to keep up: drop what is queued and tell it to re-read everything.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_RESYNC)

    def wake(self) -> None:
        """Make the stream look at its state now (the client left, the server is stopping)."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(IDLE)

    async def received(self, poll_seconds: float) -> AsyncGenerator[Received, None]:
        """What ``follow`` would yield for this account's channel, IDLE between items.

        ``asyncio.timeout`` rather than ``wait_for``: no task per wait, which 5,000 waiting
        streams would otherwise create and cancel every poll.
        """
        while not self.closed:
            try:
                async with asyncio.timeout(poll_seconds):
                    item = await self.queue.get()
            except TimeoutError:
                item = IDLE
            yield item

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub.release(self)


class LiveHub(LoopService):
    name = "live-hub"

    def __init__(
        self, redis: Redis, max_per_credential: int, max_per_process: int, poll_seconds: float = 0.5
    ) -> None:
        # run_once follows the subscription until stop(): no interval to overrun.
        super().__init__(timedelta(0), backoff_cap=timedelta(seconds=5))
        self.redis = redis
        self.max_per_credential = max_per_credential
        self.max_per_process = max_per_process
        self.poll_seconds = poll_seconds
        self.by_account: dict[UUID, set[Subscription]] = {}
        self.per_credential: Counter[bytes] = Counter()
        self.open_streams = 0
        # The subscription's last state, given to streams that open later: None before the
        # first subscription, then SUBSCRIBED or LOST.
        self.state: Received | None = None

    def open(self, account_id: UUID, credential: bytes) -> Subscription:
        if self.per_credential[credential] >= self.max_per_credential:
            raise TooManyRequests(
                f"at most {self.max_per_credential} live streams per credential", RETRY_AFTER
            )
        if self.open_streams >= self.max_per_process:
            raise TooManyRequests("this server has no room for more live streams", RETRY_AFTER)
        subscription = Subscription(self, account_id, credential)
        self.by_account.setdefault(account_id, set()).add(subscription)
        self.per_credential[credential] += 1
        self.open_streams += 1
        if self.state is not None:
            subscription.deliver(self.state)
        return subscription

    def release(self, subscription: Subscription) -> None:
        streams = self.by_account.get(subscription.account_id, set())
        streams.discard(subscription)
        if not streams:
            self.by_account.pop(subscription.account_id, None)
        self.per_credential[subscription.credential] -= 1
        if self.per_credential[subscription.credential] <= 0:
            del self.per_credential[subscription.credential]
        self.open_streams -= 1

    async def run_once(self) -> timedelta | None:
        source = follow(self.redis, CHANNEL_PATTERN, pattern=True, poll_seconds=self.poll_seconds)
        async with contextlib.aclosing(source) as received:
            async for item in received:
                if self.stopping:
                    break
                self.dispatch(item)
        return None

    def wake_all(self) -> None:
        for streams in list(self.by_account.values()):
            for subscription in list(streams):
                subscription.wake()

    def dispatch(self, item: Received) -> None:
        if item.kind is Kind.MESSAGE:
            account_id = _account_of(item.channel)
            for subscription in list(self.by_account.get(account_id, ()) if account_id else ()):
                subscription.deliver(item)
        elif item.kind in (Kind.SUBSCRIBED, Kind.LOST):
            self.state = item
            for streams in list(self.by_account.values()):
                for subscription in list(streams):
                    subscription.deliver(item)


def _account_of(channel: bytes) -> UUID | None:
    try:
        return UUID(channel.decode().removeprefix(CHANNEL_PREFIX))
    except ValueError:
        return None
