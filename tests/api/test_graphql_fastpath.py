"""The GraphQL plan for plain queries answers exactly as graphql-core's executor does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from graphql import parse

from lumio.api.graphql import fastpath
from lumio.api.graphql.schema import schema
from lumio.channel_status import repository
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite
from lumio.platforms.base import Platform
from tests.conftest import Factory

PLANNED = [
    "{ channelStatus { platform isOnline streamTitle category viewerCount startedAt updatedAt } }",
    "{ a: channelStatus { p: platform viewerCount } spotifyManualStatus { active remainingSeconds } }",
    "query Named { myAccounts { id name role active } }",
]
NOT_PLANNED = [
    "query ($x: Boolean!) { channelStatus @include(if: $x) { platform } }",
    "{ channelStatus { ...F } } fragment F on ChannelStatus { platform }",
    "{ __schema { queryType { name } } }",
    "mutation { stopSpotifyManual }",
    "{ channelStatus { platform __typename } }",
]


@pytest.mark.parametrize("query", PLANNED)
def test_plain_queries_get_a_plan(query: str) -> None:
    assert fastpath.plan(schema._schema, parse(query)) is not None


@pytest.mark.parametrize("query", NOT_PLANNED)
def test_other_queries_go_to_the_executor(query: str) -> None:
    assert fastpath.plan(schema._schema, parse(query)) is None


@pytest.mark.parametrize("query", PLANNED)
async def test_planned_answers_match_the_executor(
    api: httpx.AsyncClient, factory: Factory, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account, owner = await factory.account()
    now = datetime.now(UTC)
    await repository.set_online(
        factory.db,
        OnlineWrite(account, Platform.TWITCH, "Hi", None, 3, now - timedelta(hours=1), now),
    )
    await repository.set_offline(factory.db, OfflineWrite(account, Platform.KICK, now))
    planned = await api.post("/graphql", json={"query": query}, headers=owner.bearer)
    monkeypatch.setattr(fastpath, "plan", lambda *_: None)
    general = await api.post("/graphql", json={"query": query + " "}, headers=owner.bearer)
    assert planned.status_code == general.status_code == 200
    assert planned.json() == general.json()
    assert "errors" not in planned.json()


async def test_a_forbidden_plain_query_is_rendered_by_the_executor(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    from lumio.kit.permissions import RoleName

    account, _ = await factory.account()
    viewer = await factory.member(account, RoleName.VIEWER)
    response = await api.post(
        "/graphql", json={"query": "{ channelStatus { platform } }"}, headers=viewer.bearer
    )
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["channelStatus"]
