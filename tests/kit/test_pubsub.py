"""follow(): a channel's messages through a Redis restart, without being cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator
from pathlib import Path

import pytest

from lumio.dev.fakes.server import free_port
from lumio.embedded import EmbeddedRedis
from lumio.kit.clock import backoff_seconds
from lumio.kit.pubsub import Kind, Received, consume, follow
from lumio.kit.resources import create_redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


async def next_not_idle(items: AsyncGenerator[Received, None]) -> Received:
    """The next item that is not IDLE; gives up after 10 s, without cancelling the reader."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    async for item in items:
        if item.kind is not Kind.IDLE:
            return item
        if loop.time() > deadline:
            break
    raise AssertionError("nothing but IDLE for 10 s")


async def test_resubscribes_after_a_redis_restart(own_redis: EmbeddedRedis) -> None:
    redis = create_redis(own_redis.url)
    publisher = create_redis(own_redis.url)
    items = follow(redis, "lumio:test", poll_seconds=0.1, retry_cap_seconds=0.5)
    try:
        async with contextlib.aclosing(items):
            assert (await next_not_idle(items)).kind is Kind.SUBSCRIBED
            await publisher.publish("lumio:test", b"one")
            assert await next_not_idle(items) == Received(Kind.MESSAGE, b"one", b"lumio:test")
            await asyncio.to_thread(own_redis.stop)
            assert (await next_not_idle(items)).kind is Kind.LOST
            await asyncio.to_thread(own_redis.start)
            assert (await next_not_idle(items)).kind is Kind.SUBSCRIBED
            await publisher.publish("lumio:test", b"two")
            assert await next_not_idle(items) == Received(Kind.MESSAGE, b"two", b"lumio:test")
    finally:
        await redis.aclose()
        await publisher.aclose()


async def test_a_pattern_names_each_message_channel(own_redis: EmbeddedRedis) -> None:
    redis = create_redis(own_redis.url)
    publisher = create_redis(own_redis.url)
    items = follow(redis, "lumio:p:*", pattern=True, poll_seconds=0.1)
    try:
        async with contextlib.aclosing(items):
            assert (await next_not_idle(items)).kind is Kind.SUBSCRIBED
            await publisher.publish("lumio:p:a", b"one")
            await publisher.publish("lumio:other", b"ignored")
            await publisher.publish("lumio:p:b", b"two")
            assert await next_not_idle(items) == Received(Kind.MESSAGE, b"one", b"lumio:p:a")
            assert await next_not_idle(items) == Received(Kind.MESSAGE, b"two", b"lumio:p:b")
    finally:
        await redis.aclose()
        await publisher.aclose()


async def test_idle_items_let_the_reader_stop(own_redis: EmbeddedRedis) -> None:
    redis = create_redis(own_redis.url)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with contextlib.aclosing(follow(redis, "lumio:quiet", poll_seconds=0.1)) as items:
            kinds = [item.kind async for item in _take(items, 4)]
        assert kinds == [Kind.SUBSCRIBED, Kind.IDLE, Kind.IDLE, Kind.IDLE]
        assert loop.time() - started < 2.0
    finally:
        await redis.aclose()


async def _take(
    items: AsyncGenerator[Received, None], count: int
) -> AsyncGenerator[Received, None]:
    for _ in range(count):
        yield await anext(items)


def test_backoff_seconds_is_bounded() -> None:
    assert all(0 <= backoff_seconds(n, 0.5, 5.0) <= 5.0 for n in range(1, 30))
    assert backoff_seconds(1, 0.5, 5.0) <= 0.5


async def test_consume_hands_over_a_pattern_s_messages_until_stopped(
    own_redis: EmbeddedRedis,
) -> None:
    redis = create_redis(own_redis.url)
    publisher = create_redis(own_redis.url)
    seen: list[Received] = []
    stop = asyncio.Event()
    reader = asyncio.create_task(
        consume(redis, "lumio:c:*", seen.append, stop.is_set, pattern=True, poll_seconds=0.1)
    )
    try:
        await _until(lambda: bool(seen))
        await publisher.publish("lumio:c:a", b"one")
        await publisher.publish("lumio:elsewhere", b"ignored")
        await _until(lambda: len(seen) == 2)
        stop.set()
        await asyncio.wait_for(reader, 1.0)  # stopped by its flag, within a poll
        assert seen == [Received(Kind.SUBSCRIBED), Received(Kind.MESSAGE, b"one", b"lumio:c:a")]
    finally:
        stop.set()
        await redis.aclose()
        await publisher.aclose()


async def _until(condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)
