"""Delivery: a go-live from the real worker reaches every subscribed endpoint once, signed
(checked with the spec's reference library), in order through retries; a rollback sends
nothing; secret rotation signs twice; 410 and 3 days of failures disable the endpoint."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from standardwebhooks import Webhook as ReferenceVerifier
from standardwebhooks.webhooks import WebhookVerificationError

from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OnlineWrite
from lumio.channels import repository as channels
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.worker import PlatformPoller, PollerConfig
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.loops import running
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter
from lumio.webhooks import outbox
from lumio.webhooks.delivery import DeliveryLoop, retry_delay
from tests.conftest import Factory, Member
from tests.waiting import eventually
from tests.webhooks.conftest import SLOW_SECONDS, Receiver, drain


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    clock: Clock
    kick: FakeKickState
    poller: PlatformPoller
    account: UUID
    owner: Member
    channel_id: str

    async def poll_after(self, seconds: float) -> int:
        self.clock.advance(seconds)
        return await self.poller.run_once()


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str, Clock]]:
    clock = Clock()
    state = FakeKickState(clock=lambda: clock().timestamp())
    with FakeServer(kick_app(state)) as url:
        yield state, url, clock


@pytest.fixture
async def rig(
    kick: tuple[FakeKickState, str, Clock],
    hook_settings: Settings,
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> AsyncIterator[Rig]:
    state, url, clock = kick
    state.reset()
    await redis.delete("lumio:budget:kick")
    fake: dict[str, object] = {"client_id": state.client_id, "client_secret": state.client_secret}
    fake |= {"api_base": url, "id_base": url, "timeout": 1.0}
    configured = hook_settings.updated({"kick": fake, "detection": {"poll_batch_wait": 0.0}})
    account, owner = await factory.account()
    channel = state.add_channel("streamer", title="Hello", category="IRL", viewers=10)
    await channels.link(db, account, Platform.KICK, channel.channel_id, "streamer")
    await db.execute("UPDATE platform_channels SET next_poll_at = $1", clock())
    async with httpx.AsyncClient() as http:
        adapter = build_adapter(Platform.KICK, configured, http)
        config = PollerConfig.from_settings(configured, Platform.KICK)
        poller = PlatformPoller(adapter, db, redis, config, WorkerMetrics(), clock)
        yield Rig(clock, state, poller, account, owner, channel.channel_id)


async def add_hook(
    client: httpx.AsyncClient, member: Member, url: str, events: list[str], **extra: Any
) -> dict[str, Any]:
    body = {"url": url, "events": events, **extra}
    response = await client.post("/v1/webhooks", json=body, headers=member.bearer)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def verify(secret: str, received: Any) -> Any:
    return ReferenceVerifier(secret).verify(received.body, received.headers)


async def test_a_go_live_reaches_each_subscribed_endpoint_once_signed(
    rig: Rig, client: httpx.AsyncClient, receiver: Receiver, loop: DeliveryLoop, db: asyncpg.Pool
) -> None:
    first = await add_hook(client, rig.owner, receiver.url + "/one", ["went_online"])
    second = await add_hook(client, rig.owner, receiver.url + "/two", ["went_online", "test"])
    await add_hook(client, rig.owner, receiver.url + "/three", ["went_offline"])
    _, stranger = await factory_account(db)
    await add_hook(client, stranger, receiver.url + "/other", ["went_online"])

    assert await rig.poller.run_once() == 1
    rig.kick.set_live(rig.channel_id)
    assert await rig.poll_after(70) == 1
    await drain(loop, db)

    by_path = {r.path: r for r in receiver.received}
    assert sorted(by_path) == ["/one", "/two"]
    assert len(receiver.received) == 2
    for hook, path in ((first, "/one"), (second, "/two")):
        payload = verify(hook["secret"], by_path[path])
        assert payload["type"] == "went_online"
        data = payload["data"]
        assert data["platform"] == "kick" and data["reason"] == "went_online"
        assert data["account_id"] == str(rig.account) and data["is_online"] is True
        assert (data["title"], data["category"], data["viewers"]) == ("Hello", "IRL", 10)
        assert data["url"] == "https://kick.com/streamer" and data["started_at"]
    # Both endpoints got the same change, as two deliveries with their own webhook-id.
    assert by_path["/one"].headers["webhook-id"] != by_path["/two"].headers["webhook-id"]

    # Nothing more goes out: each delivery was done once.
    await drain(loop, db)
    assert len(receiver.received) == 2


async def factory_account(db: asyncpg.Pool) -> tuple[UUID, Member]:
    return await Factory(db).account("Stranger")


async def _announce(db: asyncpg.Pool, account: UUID, reasons: list[Reason]) -> None:
    now = datetime.now(UTC)
    events = [StatusEvent(account, r, now, "kick", r is not Reason.WENT_OFFLINE) for r in reasons]
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue_status_events(conn, events)


async def test_receiver_down_three_times_then_up_gets_each_once_in_order(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    account, owner = await factory.account()
    events = ["went_online", "stream_updated", "went_offline"]
    hook = await add_hook(client, owner, receiver.url + "/hook", events)
    receiver.statuses.extend([500, 503, 502])
    await _announce(db, account, [Reason.WENT_ONLINE, Reason.STREAM_UPDATED, Reason.WENT_OFFLINE])

    # One attempt per round: the later changes wait behind the first, which is retrying.
    for _ in range(3):
        await loop.start(loops=1)
        assert receiver.received == []
        states = await db.fetch("SELECT state, attempts FROM webhook_deliveries ORDER BY seq")
        assert [tuple(r) for r in states] == [
            ("pending", states[0]["attempts"]),
            ("pending", 0),
            ("pending", 0),
        ]
        await db.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
    await drain(loop, db)

    assert [verify(hook["secret"], r)["type"] for r in receiver.received] == events
    rows = await db.fetch("SELECT state, attempts FROM webhook_deliveries ORDER BY seq")
    assert [tuple(r) for r in rows] == [("delivered", 4), ("delivered", 1), ("delivered", 1)]
    listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=owner.bearer)
    assert {d["state"] for d in listed.json()} == {"delivered"}
    assert all(d["responseStatus"] == 200 and d["latencyMs"] is not None for d in listed.json())


async def _go_live_then_fail(db: asyncpg.Pool, account: UUID) -> None:
    now = datetime.now(UTC)
    write = OnlineWrite(account, Platform.KICK, "Hello", "IRL", 10, now, now)
    event = StatusEvent(account, Reason.WENT_ONLINE, now, "kick", True)
    async with db.acquire() as conn, conn.transaction():
        await status.set_online_many(conn, [write])
        await outbox.enqueue_status_events(conn, [event])
        raise RuntimeError("the transaction fails after both writes")


async def test_a_rolled_back_change_sends_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    account, owner = await factory.account()
    await add_hook(client, owner, receiver.url + "/hook", ["went_online"])
    with pytest.raises(RuntimeError):
        await _go_live_then_fail(db, account)
    assert await status.get_status(db, account) == []
    await drain(loop, db)
    assert receiver.received == []
    assert await db.fetchval("SELECT count(*) FROM webhook_outbox") == 0
    assert await db.fetchval("SELECT count(*) FROM webhook_deliveries") == 0


async def test_retries_keep_the_webhook_id(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    account, owner = await factory.account()
    await add_hook(client, owner, receiver.url + "/hook", ["went_online"])
    await _announce(db, account, [Reason.WENT_ONLINE])
    receiver.statuses.append(500)
    await loop.start(loops=1)
    delivery_id = await db.fetchval("SELECT id FROM webhook_deliveries WHERE attempts = 1")
    await drain(loop, db)
    (received,) = receiver.received
    assert received.headers["webhook-id"] == str(delivery_id)
    # drain made the retry due at once; the schedule itself starts at 5 s and ends at 24 h.
    assert timedelta(seconds=4.4) <= retry_delay(1) <= timedelta(seconds=5.6)
    assert timedelta(hours=21) <= retry_delay(40) <= timedelta(hours=27)


async def test_redeliver_sends_the_same_message_again(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    _, owner = await factory.account()
    hook = await add_hook(client, owner, receiver.url + "/hook", ["went_online"])
    path = f"/v1/webhooks/{hook['id']}"
    test = (await client.post(path + "/test", headers=owner.bearer)).json()
    await drain(loop, db)
    again = await client.post(f"{path}/deliveries/{test['id']}/redeliver", headers=owner.bearer)
    assert again.status_code == 202 and again.json()["state"] == "pending"
    await drain(loop, db)
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == test["id"]
    assert verify(hook["secret"], second)["type"] == "test"


async def test_rotation_signs_with_both_secrets_then_only_the_new(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    _, owner = await factory.account()
    hook = await add_hook(client, owner, receiver.url + "/hook", ["test"])
    path = f"/v1/webhooks/{hook['id']}"
    rotated = (await client.post(path + "/rotate-secret", headers=owner.bearer)).json()
    await client.post(path + "/test", headers=owner.bearer)
    await drain(loop, db)
    (during,) = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify(hook["secret"], during)
    verify(rotated["secret"], during)

    # The overlap ends (24 h later): only the new secret signs.
    await db.execute("UPDATE webhook_endpoints SET previous_until = now() - interval '1 second'")
    receiver.reset()
    await client.post(path + "/test", headers=owner.bearer)
    await drain(loop, db)
    (after,) = receiver.received
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verify(rotated["secret"], after)
    with pytest.raises(WebhookVerificationError):
        verify(hook["secret"], after)


async def test_410_gone_disables_the_endpoint(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    _, owner = await factory.account()
    hook = await add_hook(client, owner, receiver.url + "/hook", ["test"])
    receiver.statuses.append(410)
    await client.post(f"/v1/webhooks/{hook['id']}/test", headers=owner.bearer)
    await drain(loop, db)
    (shown,) = (await client.get("/v1/webhooks", headers=owner.bearer)).json()
    assert shown["enabled"] is False and "410" in shown["disabledReason"]
    assert receiver.received == []


async def test_failing_for_three_days_disables_the_endpoint(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    _, owner = await factory.account()
    hook = await add_hook(client, owner, receiver.url + "/hook", ["test"])
    path = f"/v1/webhooks/{hook['id']}"
    receiver.statuses.extend([500, 500])
    await client.post(path + "/test", headers=owner.bearer)
    await loop.start(loops=1)
    (failing,) = (await client.get("/v1/webhooks", headers=owner.bearer)).json()
    assert failing["enabled"] and failing["failingSince"] and failing["lastStatus"] == "failing"

    await db.execute("UPDATE webhook_endpoints SET failing_since = now() - interval '3 days'")
    await db.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
    await loop.start(loops=1)
    (shown,) = (await client.get("/v1/webhooks", headers=owner.bearer)).json()
    assert shown["enabled"] is False and shown["disabledReason"].startswith("failing since")
    (delivery,) = (await client.get(path + "/deliveries", headers=owner.bearer)).json()
    assert delivery["state"] == "failed"

    # Enabled again, it is healthy until the next failure.
    back = await client.patch(path, json={"enabled": True}, headers=owner.bearer)
    assert back.json()["enabled"] and back.json()["disabledReason"] is None


async def test_manual_connect_start_and_stop_are_delivered(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    _, owner = await factory.account()
    hook = await add_hook(
        client, owner, receiver.url + "/hook", ["manual_started", "manual_stopped"]
    )
    assert (await client.post("/v1/spotify/manual-connect", headers=owner.bearer)).is_success
    assert (await client.delete("/v1/spotify/manual-connect", headers=owner.bearer)).is_success
    await drain(loop, db)
    types = [verify(hook["secret"], r)["type"] for r in receiver.received]
    assert types == ["manual_started", "manual_stopped"]


async def test_a_slow_receiver_holds_back_only_its_own_deliveries(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    account, owner = await factory.account("Nova")
    await add_hook(client, owner, receiver.url + "/slow", ["went_online"])
    await add_hook(client, owner, receiver.url + "/fast", ["went_online"])
    await _announce(db, account, [Reason.WENT_ONLINE])
    started = time.monotonic()
    async with running(loop):
        await eventually(lambda: [r.path for r in receiver.received] == ["/fast"], 1.5)
        # The fast one is delivered and written back while the slow one is still on its way.
        both = {"delivered", "pending"}
        await eventually(lambda: _has_states(db, account, both), 1.5, "fast written back")
        await eventually(lambda: len(receiver.received) == 2, SLOW_SECONDS + 3)
    assert time.monotonic() - started >= SLOW_SECONDS
    assert await _has_states(db, account, {"delivered"})


async def _has_states(db: asyncpg.Pool, account: UUID, states: set[str]) -> bool:
    rows = await db.fetch("SELECT state FROM webhook_deliveries WHERE account_id = $1", account)
    return {r["state"] for r in rows} == states
