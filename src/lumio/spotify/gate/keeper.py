"""Keeping the stored gates in step with the truth: on events, at start and every minute.

An event is only a hint (DESIGN §5): the gatekeeper re-reads the truth (``channel_status`` in
PostgreSQL, the manual key in Redis) for the accounts it names and stores the gate with the time
of that reading. The reconcile reads the whole truth (``get_all_online_accounts`` plus a SCAN of
the manual keys), so events lost while a worker was down, or while Redis was, do no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.channel_status import repository as status_repository
from lumio.events.schemas import CHANNEL_PATTERN
from lumio.kit.clock import Clock
from lumio.kit.pubsub import Kind, Received, consume
from lumio.manual_connect.service import manual_key
from lumio.spotify import now_playing
from lumio.spotify import repository as repo
from lumio.spotify.gate import rules as gate
from lumio.spotify.schemas import GateChanges

log = logging.getLogger(__name__)

SCAN_COUNT = 1000


async def manual_accounts(redis: Redis) -> list[bytes]:
    """Every manual key (SCAN, never KEYS: it must not block a shared Redis)."""
    return [key async for key in redis.scan_iter(match=gate.MANUAL_PATTERN, count=SCAN_COUNT)]


async def manual_among(redis: Redis, account_ids: Sequence[UUID]) -> set[UUID]:
    if not account_ids:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for account_id in account_ids:
            pipe.exists(manual_key(account_id))
        found = await pipe.execute()
    return {a for a, n in zip(account_ids, found, strict=True) if n}


def _nothing() -> None:
    pass


class GateKeeper:
    def __init__(
        self, db: asyncpg.Pool, redis: Redis, clock: Clock, on_open: Callable[[], None]
    ) -> None:
        self.db = db
        self.redis = redis
        self.clock = clock
        self.on_open = on_open
        self.last_reconcile: datetime | None = None
        self.open_count = 0

    async def reconcile(self) -> GateChanges:
        """Every connection's gate from the whole truth."""
        checked_at = self.clock()
        online = [a.account_id for a in await status_repository.get_all_online_accounts(self.db)]
        try:
            keys = await manual_accounts(self.redis)
        except (RedisError, OSError) as exc:
            # Without Redis no manual key can be read: open what PostgreSQL shows live and leave
            # every other gate as it is until the next reconcile.
            log.warning("reconcile without manual keys (Redis unavailable): %s", exc)
            changes = await repo.set_gates(self.db, dict.fromkeys(online, True), checked_at)
            return await self._apply(GateChanges.of(changes))
        open_ids = gate.open_accounts(online, keys)
        changes = await repo.reconcile_gates(self.db, sorted(open_ids), checked_at)
        self.last_reconcile = checked_at
        self.open_count = sum(1 for c in changes if c.is_open)
        return await self._apply(GateChanges.of(changes))

    async def evaluate(self, account_ids: Sequence[UUID]) -> GateChanges:
        """The gates of these accounts, re-read from the truth (after an event)."""
        checked_at = self.clock()
        rows = await repo.online_among(self.db, account_ids)
        manual = await manual_among(self.redis, [r.account_id for r in rows if not r.online])
        gates = {r.account_id: gate.is_open(r.online, r.account_id in manual) for r in rows}
        return await self._apply(GateChanges.of(await repo.set_gates(self.db, gates, checked_at)))

    async def close(self, account_ids: Sequence[UUID], checked_at: datetime) -> GateChanges:
        """Gates a poller found closed when it claimed the accounts."""
        changes = await repo.set_gates(self.db, dict.fromkeys(account_ids, False), checked_at)
        return await self._apply(GateChanges.of(changes))

    async def _apply(self, changes: GateChanges) -> GateChanges:
        if changes.opened:
            log.info("Spotify gate opened for %d account(s)", len(changes.opened))
            self.on_open()
        if changes.closed:
            log.info("Spotify gate closed for %d account(s)", len(changes.closed))
            # Nothing is known about a player nobody polls any more.
            with contextlib.suppress(RedisError, OSError):
                await now_playing.clear_and_announce(self.redis, changes.closed)
        return changes


class EventListener:
    """Collects the accounts named by gate events; asks for a reconcile after each (re)subscribe.

    One reader task (``run``) over ``kit.pubsub``, ended by ``stop()`` within half a second and
    never cancelled: redis-py's pub/sub reader can swallow a cancellation and hang the shutdown.
    """

    def __init__(
        self,
        redis: Redis,
        on_event: Callable[[], None] = _nothing,
        on_subscribed: Callable[[], None] = _nothing,
    ) -> None:
        self.redis = redis
        # Called when accounts are pending (the evaluator wakes) and after every (re)subscribe.
        self.on_event = on_event
        self.on_subscribed = on_subscribed
        self.pending: set[UUID] = set()
        self.subscribed = asyncio.Event()
        self.stopping = False
        # The accounts of the latest gate events (operators' and tests' view of what came in).
        self.recent: deque[UUID] = deque(maxlen=1000)

    def take(self) -> list[UUID]:
        taken, self.pending = sorted(self.pending), set()
        return taken

    def stop(self) -> None:
        self.stopping = True

    async def run(self) -> None:
        await consume(self.redis, CHANNEL_PATTERN, self._handle, self._stopping, pattern=True)

    def _stopping(self) -> bool:
        return self.stopping

    def _handle(self, item: Received) -> None:
        if item.kind is Kind.SUBSCRIBED:
            self.subscribed.set()
            # Events published while nobody listened are lost: read the whole truth.
            self.on_subscribed()
            return
        account_id = gate.gate_event_account(item.data) if item.kind is Kind.MESSAGE else None
        if account_id is not None:
            self.recent.append(account_id)
            self.pending.add(account_id)
            self.on_event()
