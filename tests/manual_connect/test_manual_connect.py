"""Manual connect against real Redis: the key, its TTL and exactly one event per start/stop."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from lumio.kit.permissions import DEFAULT_ROLES, RoleName
from lumio.kit.principal import Credential, Principal
from lumio.manual_connect import service
from lumio.manual_connect.service import manual_key


def owner(account_id: UUID) -> Principal:
    permissions = frozenset(p.value for p in DEFAULT_ROLES[RoleName.OWNER])
    return Principal(uuid4(), account_id, permissions, Credential.API_KEY, uuid4(), b"x")


@pytest.fixture
async def events(redis: Redis) -> AsyncIterator[PubSub]:
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe("lumio:channel_status:*")
    yield pubsub
    await pubsub.aclose()  # type: ignore[no-untyped-call]


async def received(pubsub: PubSub, account: UUID, wait: float = 0.3) -> list[dict[str, object]]:
    """The account's events (other processes may publish for other accounts meanwhile)."""
    messages: list[dict[str, object]] = []
    deadline = asyncio.get_running_loop().time() + wait
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        message = await pubsub.get_message(timeout=left)
        if message is not None and message["channel"].decode().endswith(str(account)):
            messages.append(
                {"channel": message["channel"].decode(), **orjson.loads(message["data"])}
            )
    return messages


ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def test_start_sets_the_key_and_publishes_one_event(redis: Redis, events: PubSub) -> None:
    account = uuid4()
    status = await service.start(redis, owner(account))
    assert status.active and status.remaining_seconds == 1800
    assert 1799 <= await redis.ttl(f"lumio:spotify_manual:{account}") <= 1800
    (event,) = await received(events, account)
    assert event.pop("channel") == f"lumio:channel_status:{account}"
    occurred_at = event.pop("occurred_at")
    assert isinstance(occurred_at, str) and ISO_Z.match(occurred_at)
    assert event == {
        "v": 1,
        "account_id": str(account),
        "platform": None,
        "reason": "manual_started",
        "is_online": None,
    }


async def test_remaining_seconds_count_down_and_a_second_start_renews(redis: Redis) -> None:
    account = uuid4()
    await service.start(redis, owner(account))
    await asyncio.sleep(1.1)
    counted = await service.status(redis, owner(account))
    assert counted.active and counted.remaining_seconds is not None
    assert 1797 <= counted.remaining_seconds <= 1799
    renewed = await service.start(redis, owner(account))
    assert renewed.remaining_seconds == 1800


async def test_after_expiry_the_status_is_inactive(redis: Redis) -> None:
    account = uuid4()
    started = await service.start(redis, owner(account), ttl_seconds=1)
    assert started.active
    await asyncio.sleep(1.2)
    status = await service.status(redis, owner(account))
    assert not status.active and status.remaining_seconds is None


async def test_stop_deletes_the_key_and_is_idempotent(redis: Redis, events: PubSub) -> None:
    account = uuid4()
    await service.start(redis, owner(account))
    assert await service.stop(redis, owner(account)) is True
    assert await redis.exists(manual_key(account)) == 0
    assert await service.stop(redis, owner(account)) is True
    reasons = [e["reason"] for e in await received(events, account)]
    assert reasons == ["manual_started", "manual_stopped", "manual_stopped"]
    assert not (await service.status(redis, owner(account))).active
