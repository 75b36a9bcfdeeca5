"""Publishing events. Callers publish only after the change they announce has been committed."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.events.schemas import StatusEvent

log = logging.getLogger(__name__)


async def publish(redis: Redis, events: Iterable[StatusEvent]) -> int:
    """Publish events in one round trip; returns how many were sent.

    An event is a hint (DESIGN §5): when Redis is down it is logged and dropped, and consumers
    catch up at their next reconcile.
    """
    batch = list(events)
    if not batch:
        return 0
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for event in batch:
                pipe.publish(event.channel, event.to_json())
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("could not publish %d status event(s): %s", len(batch), exc)
        return 0
    return len(batch)


class Backlog:
    """A worker's events that Redis could not take, sent before the next ones (issue 9).

    Events are hints and consumers reconcile, yet a change committed while Redis was away should
    still be announced once it is back, not only at the next reconcile. Kept in memory, bounded:
    beyond ``limit`` the oldest go (logged) and the reconcile covers them.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.pending: deque[StatusEvent] = deque()
        self.limit = limit

    async def publish(self, redis: Redis, events: Iterable[StatusEvent]) -> int:
        """Publish what is pending and then ``events``; returns how many were sent."""
        # Taken out before the await: loops sharing the backlog never send an event twice.
        batch = [*self.pending, *events]
        self.pending.clear()
        if not batch:
            return 0
        sent = await publish(redis, batch)
        if not sent:
            self.pending.extendleft(reversed(batch))
            self._trim()
        return sent

    def _trim(self) -> None:
        dropped = 0
        while len(self.pending) > self.limit:
            self.pending.popleft()
            dropped += 1
        if dropped:
            log.warning("dropped %d unsent status event(s); consumers reconcile", dropped)
