"""The role matrix of DESIGN §8, over REST and GraphQL, and account isolation."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis

from lumio.kit.permissions import RoleName
from lumio.manual_connect.service import manual_key
from tests.conftest import Factory, Member


@dataclass(frozen=True)
class Operation:
    name: str
    permission: str
    rest: tuple[str, str]
    graphql: str


OPERATIONS = [
    Operation(
        "channelStatus",
        "spotify:read",
        ("GET", "/v1/channel-status"),
        "{ channelStatus { platform isOnline } }",
    ),
    Operation(
        "spotifyManualStatus",
        "spotify:read",
        ("GET", "/v1/spotify/manual-connect"),
        "{ spotifyManualStatus { active remainingSeconds } }",
    ),
    Operation(
        "startSpotifyManual",
        "spotify:worker",
        ("POST", "/v1/spotify/manual-connect"),
        "mutation { startSpotifyManual { active remainingSeconds } }",
    ),
    Operation(
        "stopSpotifyManual",
        "spotify:worker",
        ("DELETE", "/v1/spotify/manual-connect"),
        "mutation { stopSpotifyManual }",
    ),
]

ALLOWED = {
    RoleName.OWNER: {"spotify:read", "spotify:worker"},
    RoleName.ADMINISTRATOR: {"spotify:read", "spotify:worker"},
    RoleName.MODERATOR: {"spotify:read"},
    RoleName.VIEWER: set(),
}


async def member_with(factory: Factory, role: RoleName) -> Member:
    account, owner = await factory.account()
    return owner if role is RoleName.OWNER else await factory.member(account, role)


async def graphql(api: httpx.AsyncClient, query: str, headers: dict[str, str]) -> httpx.Response:
    return await api.post("/graphql", json={"query": query}, headers=headers)


@pytest.mark.parametrize("role", list(RoleName))
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
async def test_rest_role_matrix(
    api: httpx.AsyncClient, factory: Factory, role: RoleName, operation: Operation
) -> None:
    member = await member_with(factory, role)
    method, path = operation.rest
    response = await api.request(method, path, headers=member.bearer)
    if operation.permission in ALLOWED[role]:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "FORBIDDEN"


@pytest.mark.parametrize("role", list(RoleName))
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
async def test_graphql_role_matrix(
    api: httpx.AsyncClient, factory: Factory, role: RoleName, operation: Operation
) -> None:
    member = await member_with(factory, role)
    response = await graphql(api, operation.graphql, member.bearer)
    assert response.status_code == 200
    body = response.json()
    if operation.permission in ALLOWED[role]:
        assert "errors" not in body, body
        assert body["data"][operation.name] is not None
    else:
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_forbidden_start_changes_nothing(
    api: httpx.AsyncClient, factory: Factory, redis: Redis
) -> None:
    account, _ = await factory.account()
    moderator = await factory.member(account, RoleName.MODERATOR)
    await api.post("/v1/spotify/manual-connect", headers=moderator.bearer)
    await graphql(api, "mutation { startSpotifyManual { active } }", moderator.bearer)
    assert await redis.exists(manual_key(account)) == 0


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.name)
async def test_no_credentials(api: httpx.AsyncClient, operation: Operation) -> None:
    method, path = operation.rest
    response = await api.request(method, path)
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await graphql(api, operation.graphql, {})
    assert response.status_code == 401
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_a_member_of_a_never_reaches_b(
    api: httpx.AsyncClient, factory: Factory, redis: Redis
) -> None:
    from datetime import UTC, datetime

    from lumio.channel_status import repository
    from lumio.channel_status.schemas import OnlineWrite
    from lumio.platforms.base import Platform

    account_a, owner_a = await factory.account("A")
    account_b, _ = await factory.account("B")
    now = datetime.now(UTC)
    await repository.set_online(
        factory.db, OnlineWrite(account_b, Platform.TWITCH, "B live", None, 9, now, now)
    )
    tricks = [
        {"X-Account-Id": str(account_b)},
        {"X-Lumio-Account": str(account_b)},
        {"Cookie": f"lumio_account={account_b}"},
    ]
    for extra in tricks:
        headers = owner_a.bearer | extra
        response = await api.get(
            "/v1/channel-status", params={"account_id": str(account_b)}, headers=headers
        )
        assert response.status_code == 200 and response.json() == []
        started = await api.post(
            "/v1/spotify/manual-connect", params={"accountId": str(account_b)}, headers=headers
        )
        assert started.status_code == 200
    assert await redis.exists(manual_key(account_b)) == 0
    assert await redis.exists(manual_key(account_a)) == 1
    # Switching an API key to another account is refused, and so is a session's switch to an
    # account the user is not a member of.
    switch = await api.put(
        "/v1/me/active-account", json={"accountId": str(account_b)}, headers=owner_a.bearer
    )
    assert switch.status_code == 400
    query = "{ channelStatus { platform } myAccounts { id } }"
    body = (await graphql(api, query, owner_a.bearer)).json()
    assert body["data"]["channelStatus"] == []
    assert [a["id"] for a in body["data"]["myAccounts"]] == [str(account_a)]
