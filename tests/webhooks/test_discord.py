"""Discord endpoints: the go-live embed under the template, the end edits that message, 429's
retry_after is honoured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from lumio.events.schemas import Reason, StatusEvent
from lumio.platforms.base import LiveStream
from lumio.webhooks import outbox
from lumio.webhooks.delivery import DeliveryLoop
from lumio.webhooks.discord import render, streamed
from lumio.webhooks.schemas import StreamContext
from tests.conftest import Factory
from tests.webhooks.conftest import Receiver, drain


async def _announce(
    db: asyncpg.Pool, account: Any, reason: Reason, started: datetime, at: datetime
) -> None:
    stream = LiveStream("Speedrun", "Celeste", 42, started, "s1")
    context = {(account, "kick"): StreamContext("77", "streamer", stream)}
    event = StatusEvent(account, reason, at, "kick", reason is Reason.WENT_ONLINE)
    async with db.acquire() as conn, conn.transaction():
        await outbox.enqueue_status_events(conn, [event], context)


async def test_go_live_posts_an_embed_and_the_end_edits_it(
    client: httpx.AsyncClient,
    factory: Factory,
    receiver: Receiver,
    loop: DeliveryLoop,
    db: asyncpg.Pool,
) -> None:
    account, owner = await factory.account()
    body = {
        "url": receiver.url + "/discord/hook",
        "events": ["went_online", "went_offline"],
        "kind": "discord",
        "template": "{title} ({category}) on {platform} for {viewers}: {url}",
    }
    created = await client.post("/v1/webhooks", json=body, headers=owner.bearer)
    assert created.status_code == 201, created.text
    started = datetime.now(UTC) - timedelta(hours=2, minutes=13, seconds=20)
    await _announce(db, account, Reason.WENT_ONLINE, started, datetime.now(UTC))
    receiver.statuses.append(429)
    await loop.start(loops=1)
    row = await db.fetchrow(
        "SELECT next_attempt_at - last_attempt_at AS wait FROM webhook_deliveries"
    )
    assert row is not None and row["wait"] < timedelta(seconds=1)  # retry_after 0.05 s, not 5 s
    await drain(loop, db)
    await _announce(db, account, Reason.WENT_OFFLINE, started, datetime.now(UTC))
    await drain(loop, db)

    post, edit = receiver.received
    assert (post.method, post.path, post.query) == ("POST", "/discord/hook", "wait=true")
    message = post.json()
    assert message["content"] == ("Speedrun (Celeste) on Kick for 42: https://kick.com/streamer")
    (embed,) = message["embeds"]
    assert embed["title"] == "Speedrun" and embed["url"] == "https://kick.com/streamer"
    assert embed["timestamp"] == started.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {f["name"]: f["value"] for f in embed["fields"]} == {
        "Platform": "Kick",
        "Category": "Celeste",
    }
    assert "webhook-signature" not in post.headers
    assert (edit.method, edit.path) == ("PATCH", "/discord/hook/messages/1")
    assert edit.json()["content"] == "Kick: ended — streamed 2 h 13 min"
    assert await db.fetchval("SELECT count(*) FROM webhook_discord_messages") == 0


def test_rendering() -> None:
    data = {"platform": "twitch", "title": "T", "category": None, "url": "u", "viewers": 0}
    assert render("{platform}|{title}|{category}|{url}|{viewers}|{other}", data) == (
        "Twitch|T||u|0|{other}"
    )
    assert render(None, data) == "T is live on Twitch: u"
    assert streamed(8000) == "2 h 13 min" and streamed(59 * 60) == "59 min"


@pytest.mark.parametrize("url", ["https://example.com/api/webhooks/1/x"])
async def test_a_discord_endpoint_needs_a_discord_url(
    api: httpx.AsyncClient, factory: Factory, url: str
) -> None:
    _, owner = await factory.account()
    body = {"url": url, "events": ["went_online"], "kind": "discord"}
    response = await api.post("/v1/webhooks", json=body, headers=owner.bearer)
    assert response.status_code == 400
