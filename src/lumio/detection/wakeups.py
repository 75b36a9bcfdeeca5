"""The worker's side of push hints: wake a platform's pollers when the API says a channel is due."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from redis.asyncio import Redis

from lumio.kit.pubsub import Kind, follow
from lumio.platforms.base import Platform
from lumio.push.schemas import WAKE_CHANNEL

PREFIX = WAKE_CHANNEL.format(platform="")


class Wakeable(Protocol):
    stopping: asyncio.Event

    def wake(self, platform: Platform) -> None: ...


async def follow_wakes(redis: Redis, worker: Wakeable) -> None:
    """Until the worker stops: every wake-up message ends that platform's pauses.

    After a (re)subscription every platform is woken: a message may have been missed, and a
    claim that finds nothing due costs one query.
    """
    channel = WAKE_CHANNEL.format(platform="*")
    async with contextlib.aclosing(follow(redis, channel, pattern=True)) as messages:
        async for received in messages:
            if worker.stopping.is_set():
                return
            if received.kind is Kind.SUBSCRIBED:
                for platform in Platform:
                    worker.wake(platform)
            elif received.kind is Kind.MESSAGE:
                _wake_named(worker, received.channel.decode(errors="replace"))


def _wake_named(worker: Wakeable, channel: str) -> None:
    with contextlib.suppress(ValueError):
        worker.wake(Platform(channel.removeprefix(PREFIX)))
