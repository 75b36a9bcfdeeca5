"""Twitch EventSub end to end: fake Twitch's signed messages → the API's receiver → the worker."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis

from lumio.channels import repository as channels
from lumio.channels.service import linked_channels
from lumio.dev.fakes.push import rfc3339_nanos
from lumio.dev.fakes.server import free_port
from lumio.dev.fakes.twitch import FakeTwitchState, eventsub_signature
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from lumio.platforms.registry import build_adapter
from lumio.platforms.twitch import TwitchAdapter
from lumio.push import service
from lumio.push.reconcile import LIST_LOCK, PushReconciler, build_clients
from lumio.push.schemas import TOPICS
from tests.conftest import Factory
from tests.push.conftest import SECRET, Rig
from tests.waiting import eventually


def signed(kind: str, payload: dict[str, object]) -> tuple[dict[str, str], bytes]:
    """Headers and body of one EventSub message, signed as Twitch signs it."""
    body = orjson.dumps(payload)
    message_id = str(uuid.uuid4())
    timestamp = rfc3339_nanos(datetime.now(UTC))
    headers = {
        "Twitch-Eventsub-Message-Id": message_id,
        "Twitch-Eventsub-Message-Timestamp": timestamp,
        "Twitch-Eventsub-Message-Signature": eventsub_signature(
            SECRET, message_id, timestamp, body
        ),
        "Twitch-Eventsub-Message-Type": kind,
        "Content-Type": "application/json",
    }
    return headers, body


def message(rig: Rig, **changes: object) -> tuple[dict[str, str], bytes]:
    """A signed stream.online notification for the rig's channel."""
    subscription = next(s for s in rig.state.subscriptions() if s["type"] == "stream.online")
    event = {"id": "777", "broadcaster_user_id": rig.channel_id, "type": "live",
             "started_at": "2026-12-02T06:00:00Z"}  # fmt: skip
    return signed("notification", {"subscription": subscription, "event": event, **changes})


async def hint_count(rig: Rig) -> int:
    count: int = await rig.db.fetchval("SELECT count(*) FROM push_hints")
    return count


async def test_a_go_live_is_one_poll_and_one_went_online(rig: Rig) -> None:
    await asyncio.sleep(0.3)
    before = rig.streams_requests()
    rig.state.set_live(rig.channel_id)
    online = await rig.went_online(1.5)
    assert len(online) == 1
    # The hint armed the second sighting: one Helix request confirmed it.
    assert rig.streams_requests() - before == 1
    # The same stream never announces again.
    assert await rig.went_online(1.0) == []


async def test_helix_lag_waits_for_a_poll_that_confirms(rig: Rig) -> None:
    await asyncio.sleep(0.3)
    rig.state.lag(rig.channel_id, 0)
    rig.state.set_live(rig.channel_id)
    rig.state.lag(rig.channel_id, 2)
    # The push arrives at once; Helix shows nothing for two reads: no went_online before that.
    first = await rig.went_online(0.3)
    assert first == []
    online = await rig.went_online(4.0)
    assert len(online) == 1
    assert rig.state.channel(rig.channel_id).lag_reads == 0


async def test_a_lost_push_is_found_by_the_push_interval_poll(rig: Rig) -> None:
    # A title change is a hint too: its poll schedules the channel at the push-mode interval.
    rig.state.update_channel(rig.channel_id, title="warming up")

    async def scheduled_with_push() -> bool:
        row = await rig.db.fetchrow(
            "SELECT next_poll_at - last_polled_at AS gap FROM platform_channels WHERE account_id = $1",
            rig.account,
        )
        return row is not None and row["gap"] is not None and row["gap"] <= timedelta(seconds=2.2)

    await eventually(scheduled_with_push, 3)
    rig.state.push.switch("drop")
    rig.state.set_live(rig.channel_id)
    # Found by the 2 s push-mode poll (not the 60 s poll-only one), then a second sighting.
    online = await rig.went_online(5.0)
    assert len(online) == 1
    assert rig.state.push.outcomes["dropped"] == 1


async def test_duplicates_and_replicas_make_one_hint(rig: Rig) -> None:
    headers, body = message(rig)
    async with httpx.AsyncClient(base_url=rig.api_url) as http:
        first = await http.post("/webhooks/twitch", headers=headers, content=body)
        again = await http.post("/webhooks/twitch", headers=headers, content=body)
    assert (first.status_code, again.status_code) == (204, 204)
    hinted = await rig.db.fetchval("SELECT hinted_at FROM push_hints")
    # A second API process (same Redis) receiving the same message id: nothing more.
    from lumio.api.app import create_app

    other = create_app(rig.settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as http:
            third = await http.post("/webhooks/twitch", headers=headers, content=body)
    assert third.status_code == 204
    assert await rig.db.fetchval("SELECT hinted_at FROM push_hints") == hinted
    counts = await rig.redis.hgetall(service.COUNTS_KEY)
    assert counts[b"twitch:duplicate"] == b"2"


@pytest.mark.parametrize("case", ["bad_signature", "missing_header", "old", "unknown"])
async def test_bad_messages_are_refused_and_change_nothing(rig: Rig, case: str) -> None:
    headers, body = message(rig)
    if case == "unknown":
        headers, body = message(
            rig,
            subscription={
                "id": "not-ours",
                "type": "stream.online",
                "condition": {"broadcaster_user_id": rig.channel_id},
            },
        )
    if case == "bad_signature":
        headers["Twitch-Eventsub-Message-Signature"] = "sha256=" + "0" * 64
    if case == "missing_header":
        del headers["Twitch-Eventsub-Message-Timestamp"]
    if case == "old":
        old = rfc3339_nanos(datetime.now(UTC) - timedelta(minutes=11))
        headers["Twitch-Eventsub-Message-Timestamp"] = old
        message_id = headers["Twitch-Eventsub-Message-Id"]
        headers["Twitch-Eventsub-Message-Signature"] = eventsub_signature(
            SECRET, message_id, old, body
        )
    # Only the receiver may change anything now: the worker's own polls stop first.
    await asyncio.sleep(0.3)
    rig.worker.stop()
    await asyncio.sleep(0.5)
    due_before = await rig.db.fetchval("SELECT next_poll_at FROM platform_channels")
    async with httpx.AsyncClient(base_url=rig.api_url) as http:
        answer = await http.post("/webhooks/twitch", headers=headers, content=body)
    assert 400 <= answer.status_code < 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert await hint_count(rig) == 0
    assert await rig.db.fetchval("SELECT next_poll_at FROM platform_channels") == due_before


async def test_the_challenge_is_answered_only_for_our_subscriptions(rig: Rig) -> None:
    subscription = {"id": "x", "type": "stream.online", "condition": {"broadcaster_user_id": "424242"},
                    "status": "webhook_callback_verification_pending"}  # fmt: skip
    headers, body = signed(
        "webhook_callback_verification", {"challenge": "pick-me", "subscription": subscription}
    )
    async with httpx.AsyncClient(base_url=rig.api_url) as http:
        answer = await http.post("/webhooks/twitch", headers=headers, content=body)
    assert answer.status_code == 404
    assert "pick-me" not in answer.text
    # Ours were answered: the fake saw the exact challenge as text/plain and enabled all three.
    assert len(rig.state.subscriptions(status="enabled")) == 3


async def test_a_revoked_subscription_is_recreated(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "RECREATE_SOON", timedelta(0))
    online = next(s for s in rig.state.subscriptions() if s["type"] == "stream.online")
    rig.state.revoke(online["id"], "notification_failures_exceeded")
    await eventually(lambda: _status_is(rig, "stream.online", "revoked"), 3)

    async def recreated() -> bool:
        fresh = rig.state.subscriptions(status="enabled", kind="stream.online")
        return len(fresh) == 1 and fresh[0]["id"] != online["id"]

    await eventually(recreated, 5)
    await eventually(lambda: _status_is(rig, "stream.online", "enabled"), 3)


async def _status_is(rig: Rig, topic: str, status: str) -> bool:
    found = await rig.db.fetchval("SELECT status FROM push_subscriptions WHERE topic = $1", topic)
    return bool(found == status)


async def test_unlink_deletes_the_subscriptions_at_twitch(rig: Rig) -> None:
    await channels.unlink(rig.db, rig.account, Platform.TWITCH)

    async def gone() -> bool:
        return not rig.state.subscriptions() and await rig.subscriptions("enabled") == 0

    await eventually(gone, 5)


async def test_listing_shows_the_push_status(rig: Rig) -> None:
    rig.state.set_live(rig.channel_id)
    await rig.went_online(1.5)
    [linked] = await linked_channels(rig.db, rig.account)
    assert linked.push_status == "enabled"
    assert linked.push_last_message_at is not None


async def test_two_replicas_create_each_subscription_once(
    twitch: tuple[FakeTwitchState, str],
    push_settings: Settings,
    api_url: str,
    db: asyncpg.Pool,
    redis: Redis,
    factory: Factory,
) -> None:
    state = twitch[0]
    for subscription in state.subscriptions():
        state.delete_subscription(subscription["id"])
    linked = [await link_new_channel(state, db, factory) for _ in range(10)]
    wanted = Counter((c, t) for c in linked for t in TOPICS[Platform.TWITCH])
    # The list comparison deletes subscriptions it does not know, so it would tidy a duplicate
    # away before the assertions: keep it out, as if a third replica held its lock.
    await redis.set(LIST_LOCK, b"1", ex=30)
    state.reset_stats()
    try:
        async with httpx.AsyncClient() as first, httpx.AsyncClient() as second:
            replicas = [replica(push_settings, db, redis, http) for http in (first, second)]
            for _ in range(3):
                await asyncio.gather(*(r.run_once() for r in replicas))
            await eventually(lambda: enabled_rows(db, len(wanted)), 10, "all enabled, none failed")
    finally:
        await redis.delete(LIST_LOCK)
    found = Counter(
        (s["condition"]["broadcaster_user_id"], s["type"]) for s in state.subscriptions()
    )
    assert found == wanted
    # Created once each: no second create, not even one Twitch refused as a duplicate (409).
    by_status = state.stats().by_status
    assert (by_status.get("202", 0), by_status.get("409", 0)) == (len(wanted), 0)


async def link_new_channel(state: FakeTwitchState, db: asyncpg.Pool, factory: Factory) -> str:
    channel = state.add_channel(f"twin{free_port()}")
    account, _ = await factory.account()
    await channels.link(db, account, Platform.TWITCH, channel.id, channel.login)
    return channel.id


def replica(
    settings: Settings, db: asyncpg.Pool, redis: Redis, http: httpx.AsyncClient
) -> PushReconciler:
    """One `lumio worker`'s reconciler: its own HTTP client and app token, the shared stores."""
    adapter = build_adapter(Platform.TWITCH, settings, http)
    assert isinstance(adapter, TwitchAdapter)
    clients = build_clients(settings, http, {Platform.TWITCH: adapter.app_headers})
    return PushReconciler(db, redis, settings, clients)


async def enabled_rows(db: asyncpg.Pool, count: int) -> bool:
    statuses = await db.fetch("SELECT status FROM push_subscriptions")
    return len(statuses) == count and all(r["status"] == "enabled" for r in statuses)
