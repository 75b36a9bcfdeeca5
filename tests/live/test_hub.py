"""The live hub's bookkeeping, without Redis: caps, release, fan-out, a slow stream's resync."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from lumio.events.schemas import channel_for
from lumio.kit.errors import TooManyRequests
from lumio.kit.pubsub import Kind, Received
from lumio.live.hub import QUEUE_SIZE, LiveHub


def hub(per_credential: int = 2, per_process: int = 3) -> LiveHub:
    # Never started: the Redis client is not used.
    return LiveHub(Redis(), per_credential, per_process)


async def test_caps_per_credential_and_process_and_release() -> None:
    live = hub()
    account = uuid.uuid4()
    first = live.open(account, b"a")
    live.open(account, b"a")
    with pytest.raises(TooManyRequests) as refused:
        live.open(account, b"a")
    assert refused.value.retry_after >= 1
    live.open(account, b"b")
    with pytest.raises(TooManyRequests):
        live.open(account, b"c")
    first.close()
    first.close()  # twice is harmless
    assert live.open_streams == 2
    live.open(account, b"c")


async def test_messages_reach_only_their_account_and_state_reaches_all() -> None:
    live = hub(per_process=10)
    one, two = uuid.uuid4(), uuid.uuid4()
    a, b = live.open(one, b"a"), live.open(two, b"b")
    live.dispatch(Received(Kind.SUBSCRIBED))
    live.dispatch(Received(Kind.MESSAGE, b"{}", channel_for(one).encode()))
    live.dispatch(Received(Kind.MESSAGE, b"{}", b"lumio:channel_status:not-a-uuid"))
    assert [a.queue.get_nowait().kind for _ in range(2)] == [Kind.SUBSCRIBED, Kind.MESSAGE]
    assert b.queue.get_nowait().kind is Kind.SUBSCRIBED
    assert b.queue.empty()
    # A stream opened later learns the current state at once.
    late = live.open(one, b"c")
    assert late.queue.get_nowait().kind is Kind.SUBSCRIBED


async def test_a_slow_stream_is_told_to_resync_instead_of_growing() -> None:
    live = hub(per_process=10)
    account = uuid.uuid4()
    slow = live.open(account, b"a")
    for _ in range(QUEUE_SIZE + 5):
        live.dispatch(Received(Kind.MESSAGE, b"{}", channel_for(account).encode()))
    assert slow.queue.qsize() <= QUEUE_SIZE
    kinds = [slow.queue.get_nowait().kind for _ in range(slow.queue.qsize())]
    assert Kind.SUBSCRIBED in kinds
