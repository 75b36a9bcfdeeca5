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
    kick_fake = {
        "client_id": state.client_id,
        "client_secret": state.client_secret,
        "api_base": url,
        "id_base": url,
    }
    configured = settings.updated({"kick": kick_fake})
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


ALLOWED_TO_MANAGE = {RoleName.OWNER, RoleName.ADMINISTRATOR}


@pytest.mark.parametrize("role", list(RoleName))
async def test_preview_role_matrix(
    client: httpx.AsyncClient, factory: Factory, role: RoleName
) -> None:
    account, owner = await factory.account()
    member = owner if role is RoleName.OWNER else await factory.member(account, role)
    params = {"platform": "kick", "channel": "kick.com/streamer_one"}
    rest = await client.get("/v1/channels/preview", params=params, headers=member.bearer)
    query = (
        '{ previewChannel(platform: "kick", channel: "streamer_one") { displayName channelId } }'
    )
    gql = (await client.post("/graphql", json={"query": query}, headers=member.bearer)).json()
    if role in ALLOWED_TO_MANAGE:
        assert rest.status_code == 200, rest.text
        body = rest.json()
        assert body["platform"] == "kick" and body["displayName"] == "streamer_one"
        assert body["channelId"].isdigit() and "avatarUrl" in body
        assert gql["data"]["previewChannel"]["channelId"] == body["channelId"]
    else:
        assert rest.status_code == 403 and rest.json()["code"] == "FORBIDDEN"
        assert [e["extensions"]["code"] for e in gql["errors"]] == ["FORBIDDEN"]
    # A preview links nothing.
    assert (await client.get("/v1/channels", headers=owner.bearer)).json() == []


async def test_preview_of_a_missing_channel_and_bad_input(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    missing = await client.get(
        "/v1/channels/preview",
        params={"platform": "kick", "channel": "nobody_here"},
        headers=owner.bearer,
    )
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    for params in [{"platform": "myspace", "channel": "x"}, {"platform": "kick", "channel": ""}]:
        bad = await client.get("/v1/channels/preview", params=params, headers=owner.bearer)
        assert bad.status_code == 400, bad.text
    assert (await client.get("/v1/channels/preview", params=params)).status_code == 401


async def test_a_failing_platform_is_reported_stale_after_three_intervals(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    account, owner = await factory.account()
    other, other_owner = await factory.account("Other")
    await client.post(
        "/v1/channels", json={"platform": "kick", "channel": "streamer_one"}, headers=owner.bearer
    )
    fresh = (await client.get("/v1/channels", headers=owner.bearer)).json()[0]
    assert fresh["stale"] is False and fresh["errorSince"] is None and fresh["errorKind"] is None
    # Offline interval 60 s: unknown for 2 minutes is not stale yet, for 4 minutes it is.
    for minutes, stale in [(2, False), (4, True)]:
        await factory.db.execute(
            "UPDATE platform_channels SET last_error = 'http_5xx: 503 from Kick',"
            " error_since = now() - make_interval(mins => $2) WHERE account_id = $1",
            account,
            minutes,
        )
        listed = (await client.get("/v1/channels", headers=owner.bearer)).json()[0]
        assert listed["stale"] is stale and listed["errorKind"] == "http_5xx"
        query = "{ linkedChannels { stale errorKind errorSince } }"
        gql = await client.post("/graphql", json={"query": query}, headers=owner.bearer)
        assert gql.json()["data"]["linkedChannels"][0]["stale"] is stale
    # Another account sees none of it.
    assert (await client.get("/v1/channels", headers=other_owner.bearer)).json() == []
    assert other != account


async def test_the_worker_records_since_when_a_platform_fails(factory: Factory) -> None:
    from uuid import uuid4

    from lumio.channels import repository
    from lumio.channels.schemas import PollOutcome

    account, _ = await factory.account()
    await repository.link(factory.db, account, Platform.KICK, "42", "x")
    first = datetime(2026, 12, 1, 14, 2, tzinfo=UTC)
    for polled_at, error in [(first, "timeout: a"), (first.replace(minute=5), "timeout: b")]:
        token = uuid4()
        await repository.claim(
            factory.db, Platform.KICK, polled_at.replace(year=2099), 10, 60, token
        )
        outcome = PollOutcome(account, Platform.KICK, {}, polled_at, 1, error, polled_at)
        assert await repository.complete(factory.db, [outcome], token)
        [linked] = await repository.list_linked(factory.db, account)
        assert linked.error_since == first
    token = uuid4()
    await repository.claim(factory.db, Platform.KICK, first.replace(year=2099), 10, 60, token)
    ok = PollOutcome(account, Platform.KICK, {}, first, 0, None, first.replace(minute=9))
    await repository.complete(factory.db, [ok], token)
    [linked] = await repository.list_linked(factory.db, account)
    assert linked.error_since is None and linked.last_error is None
