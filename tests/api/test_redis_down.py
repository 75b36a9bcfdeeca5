"""DESIGN §9: with Redis down, status reads keep working and manual connect answers 503."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from lumio.api.app import create_app
from lumio.channel_status import repository
from lumio.channel_status.schemas import OnlineWrite
from lumio.dev.fakes.server import free_port
from lumio.embedded import EmbeddedRedis
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from tests.conftest import Factory


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(settings: Settings, own_redis: EmbeddedRedis) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.updated({"redis": {"url": own_redis.url}}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as c:
            yield c


async def test_status_survives_redis_and_manual_connect_recovers(
    client: httpx.AsyncClient, own_redis: EmbeddedRedis, factory: Factory
) -> None:
    account, owner = await factory.account()
    now = datetime.now(UTC)
    write = OnlineWrite(account, Platform.KICK, "Live!", "IRL", 5, now, now)
    await repository.set_online(factory.db, write)
    started = await client.post("/v1/spotify/manual-connect", headers=owner.bearer)
    assert started.status_code == 200

    own_redis.stop()
    status = await client.get("/v1/channel-status", headers=owner.bearer)
    assert status.status_code == 200
    assert [row["streamTitle"] for row in status.json()] == ["Live!"]
    gql = await client.post(
        "/graphql", json={"query": "{ channelStatus { platform isOnline } }"}, headers=owner.bearer
    )
    assert gql.json() == {"data": {"channelStatus": [{"platform": "kick", "isOnline": True}]}}
    for method in ("GET", "POST", "DELETE"):
        down = await client.request(method, "/v1/spotify/manual-connect", headers=owner.bearer)
        assert down.status_code == 503
        problem = down.json()
        assert problem["code"] == "UNAVAILABLE"
        assert "Redis" in problem["detail"] and "channel status still works" in problem["detail"]
    for query in (
        "{ spotifyManualStatus { active } }",
        "mutation { startSpotifyManual { active } }",
        "mutation { stopSpotifyManual }",
    ):
        body = (await client.post("/graphql", json={"query": query}, headers=owner.bearer)).json()
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAVAILABLE"]
        assert "Redis" in body["errors"][0]["message"]

    # Back again, on the same address: no restart of the API needed. Redis kept nothing on
    # disk, so the earlier connect is gone.
    own_redis.start()
    again = await client.get("/v1/spotify/manual-connect", headers=owner.bearer)
    assert again.status_code == 200 and again.json() == {"active": False, "remainingSeconds": None}
    restarted = await client.post("/v1/spotify/manual-connect", headers=owner.bearer)
    assert restarted.json() == {"active": True, "remainingSeconds": 1800}
