"""Publishing events. Callers publish only after the change they announce has been committed."""

from __future__ import annotations

import logging
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
