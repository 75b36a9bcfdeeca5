"""The one pub/sub follower: a Redis channel or pattern, followed through Redis restarts.

Every subscriber of the system (live streams, the Spotify gate keeper, the credential cache)
reads through ``follow``. The reader polls ``get_message`` with a timeout and is never
cancelled: redis-py's pub/sub reader can swallow a cancellation and hang the shutdown. Whoever
iterates decides when to stop, at least once per ``poll_seconds``, and closes the iterator
(``contextlib.aclosing``), which closes the subscription. ``consume`` does exactly that for
the background subscribers (a handler per item, a stop flag).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.kit.clock import backoff_seconds

log = logging.getLogger(__name__)


class Kind(StrEnum):
    # Subscribed (again): anything published before this moment may have been missed.
    SUBSCRIBED = "subscribed"
    MESSAGE = "message"
    # The subscription broke (Redis down or restarting); it is retried with backoff.
    LOST = "lost"
    # Nothing arrived within one poll: a chance for the reader to check whether to stop.
    IDLE = "idle"


@dataclass(frozen=True, slots=True)
class Received:
    kind: Kind
    data: bytes = b""
    # The channel a message came on (useful with a pattern subscription).
    channel: bytes = b""


IDLE = Received(Kind.IDLE)


async def follow(
    redis: Redis,
    channel: str,
    *,
    pattern: bool = False,
    poll_seconds: float = 0.5,
    retry_base_seconds: float = 0.5,
    retry_cap_seconds: float = 5.0,
) -> AsyncGenerator[Received, None]:
    """Yield the channel's messages, forever, with SUBSCRIBED after every (re)subscription.

    With ``pattern``, ``channel`` is a glob (PSUBSCRIBE) and each message names its channel.
    A lost subscription is logged once per outage, not once per retry.
    """
    failures = 0
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await (pubsub.psubscribe(channel) if pattern else pubsub.subscribe(channel))
            if failures:
                log.info("subscription to %s restored", channel)
            failures = 0
            yield Received(Kind.SUBSCRIBED)
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=poll_seconds
                )
                if message is None:
                    yield IDLE
                elif message["type"] in ("message", "pmessage"):
                    yield Received(Kind.MESSAGE, message["data"], _bytes(message["channel"]))
        except (RedisError, OSError) as exc:
            failures += 1
            if failures == 1:
                log.warning("lost the subscription to %s, retrying: %s", channel, exc)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        yield Received(Kind.LOST)
        loop = asyncio.get_running_loop()
        resume_at = loop.time() + backoff_seconds(failures, retry_base_seconds, retry_cap_seconds)
        while (left := resume_at - loop.time()) > 0:
            await asyncio.sleep(min(left, poll_seconds))
            yield IDLE


async def consume(
    redis: Redis,
    channel: str,
    handle: Callable[[Received], None],
    stopping: Callable[[], bool],
    *,
    pattern: bool = False,
    poll_seconds: float = 0.5,
) -> None:
    """Hand every item but IDLE to ``handle`` until ``stopping()`` (seen within ``poll_seconds``).

    Run it as one task and end it by its stop flag, never by cancelling it.
    """
    items = follow(redis, channel, pattern=pattern, poll_seconds=poll_seconds)
    async with contextlib.aclosing(items):
        async for item in items:
            if stopping():
                return
            if item.kind is not Kind.IDLE:
                handle(item)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
