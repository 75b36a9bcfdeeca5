"""Linking and unlinking channels over REST and GraphQL, resolved against a fake Kick."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from lumio.api.app import create_app
from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OnlineWrite
from lumio.dev.fakes.kick import FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.kit.permissions import RoleName
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from tests.conftest import Factory


@pytest.fixture(scope="module")
def kick() -> Iterator[tuple[FakeKickState, str]]:
    state = FakeKickState()
    with FakeServer(kick_app(state)) as url:
        yield state, url


@pytest.fixture
async def client(
    settings: Settings, kick: tuple[FakeKickState, str]
) -> AsyncIterator[httpx.AsyncClient]:
    state, url = kick
    state.reset()
    state.add_channel("streamer_one", display_name="Streamer One")
    configured = settings.model_copy(
        update={
            "kick_client_id": state.client_id,
            "kick_client_secret": state.client_secret,
            "kick_api_base": url,
            "kick_id_base": url,
        }
    )
    app: FastAPI = create_app(configured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as c:
            yield c


async def test_owner_links_lists_and_unlinks(
    client: httpx.AsyncClient, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account()
    linked = await client.post(
        "/v1/channels",
        json={"platform": "kick", "channel": "https://kick.com/streamer_one"},
        headers=owner.bearer,
    )
    assert linked.status_code == 201, linked.text
    body = linked.json()
    assert body["platform"] == "kick"
    assert body["displayName"] == "streamer_one"
    assert body["channelId"].isdigit()
    listed = await client.get("/v1/channels", headers=owner.bearer)
    assert [c["channelId"] for c in listed.json()] == [body["channelId"]]

    now = datetime.now(UTC)
    await status.set_online(factory.db, OnlineWrite(account, Platform.KICK, "x", None, 1, now, now))
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"lumio:channel_status:{account}")
    gone = await client.delete("/v1/channels/kick", headers=owner.bearer)
    assert gone.status_code == 204
    assert await status.get_status(factory.db, account) == []
    message = await pubsub.get_message(timeout=1.0) or await pubsub.get_message(timeout=1.0)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None
    assert b'"went_offline"' in message["data"]
    again = await client.delete("/v1/channels/kick", headers=owner.bearer)
    assert again.status_code == 404


async def test_relinking_to_another_channel_ends_the_old_stream_first(
    client: httpx.AsyncClient, kick: tuple[FakeKickState, str], factory: Factory, redis: Redis
) -> None:
    state, _ = kick
    state.add_channel("streamer_two", display_name="Streamer Two")
    account, owner = await factory.account()
    link = {"platform": "kick", "channel": "streamer_one"}
    assert (await client.post("/v1/channels", json=link, headers=owner.bearer)).status_code == 201
    earlier = datetime.now(UTC) - timedelta(seconds=5)
    write = OnlineWrite(account, Platform.KICK, "old", None, 1, earlier, earlier)
    await status.set_online(factory.db, write)
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(f"lumio:channel_status:{account}")

    # The same channel again: nothing ends.
    assert (await client.post("/v1/channels", json=link, headers=owner.bearer)).status_code == 201
    assert await pubsub.get_message(timeout=0.3) is None
    other = {"platform": "kick", "channel": "streamer_two"}
    assert (await client.post("/v1/channels", json=other, headers=owner.bearer)).status_code == 201
    [row] = await status.get_status(factory.db, account)
    assert not row.is_online and row.started_at is None
    message = await pubsub.get_message(timeout=1.0) or await pubsub.get_message(timeout=1.0)
    assert await pubsub.get_message(timeout=0.3) is None
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    assert message is not None
    assert b'"went_offline"' in message["data"]


async def test_bad_links_are_refused_and_change_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    cases = [
        ({"platform": "tiktok", "channel": "x"}, 400, "BAD_REQUEST"),
        ({"platform": "kick", "channel": "nobody_here"}, 404, "NOT_FOUND"),
        ({"platform": "twitch", "channel": "someone"}, 503, "UNAVAILABLE"),
        ({"platform": "kick"}, 400, "BAD_REQUEST"),
        ({"platform": "kick", "channel": "streamer_one", "extra": 1}, 400, "BAD_REQUEST"),
    ]
    for body, status_code, code in cases:
        response = await client.post("/v1/channels", json=body, headers=owner.bearer)
        assert response.status_code == status_code, (body, response.text)
        assert response.json()["code"] == code
    assert (await client.get("/v1/channels", headers=owner.bearer)).json() == []


@pytest.mark.parametrize("role", list(RoleName))
async def test_only_owner_and_administrator_manage_channels(
    client: httpx.AsyncClient, factory: Factory, role: RoleName
) -> None:
    account, owner = await factory.account()
    member = owner if role is RoleName.OWNER else await factory.member(account, role)
    rest = await client.post(
        "/v1/channels", json={"platform": "kick", "channel": "streamer_one"}, headers=member.bearer
    )
    mutation = 'mutation { linkChannel(platform: "kick", channel: "streamer_one") { channelId } }'
    gql = (await client.post("/graphql", json={"query": mutation}, headers=member.bearer)).json()
    if role in (RoleName.OWNER, RoleName.ADMINISTRATOR):
        assert rest.status_code == 201
        assert gql["data"]["linkChannel"]["channelId"] == rest.json()["channelId"]
    else:
        assert rest.status_code == 403
        assert [e["extensions"]["code"] for e in gql["errors"]] == ["FORBIDDEN"]
        listed = await client.get("/v1/channels", headers=owner.bearer)
        assert listed.json() == []
