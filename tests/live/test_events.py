"""GET /v1/events against a real `lumio api`: who may listen, what arrives, and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.permissions import RoleName
from tests.apiserver import ApiProcess
from tests.conftest import Factory

Frame = tuple[str, dict[str, object]]


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Parse the stream into (event, data) pairs."""
    event, data = "message", b""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ").encode()
        elif line == "" and data:
            yield event, orjson.loads(data)
            event, data = "message", b""


async def next_frame(stream: AsyncIterator[Frame]) -> Frame:
    async with asyncio.timeout(3.0):
        return await anext(stream)


def went_online(account_id: UUID, platform: str = "twitch") -> StatusEvent:
    return StatusEvent(account_id, Reason.WENT_ONLINE, datetime.now(UTC), platform, True)


async def test_hello_then_the_accounts_events_only(
    api_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("A")
    other, _ = await factory.account("B")
    async with (
        httpx.AsyncClient(base_url=api_server.base_url, timeout=5) as client,
        client.stream("GET", "/v1/events", headers=owner.bearer) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        stream = frames(response)
        assert await next_frame(stream) == ("hello", {"accountId": str(account), "live": True})
        await publish(redis, [went_online(other, "kick"), went_online(account)])
        event, data = await next_frame(stream)
        assert event == "status"
        assert data["account_id"] == str(account)
        assert data["reason"] == "went_online"
        assert data["platform"] == "twitch"


async def test_no_credentials_and_roles(api_server: ApiProcess, factory: Factory) -> None:
    account, _ = await factory.account()
    viewer = await factory.member(account, RoleName.VIEWER)
    moderator = await factory.member(account, RoleName.MODERATOR)
    async with httpx.AsyncClient(base_url=api_server.base_url, timeout=5) as client:
        anonymous = await client.get("/v1/events")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "UNAUTHENTICATED"
        refused = await client.get("/v1/events", headers=viewer.bearer)
        assert refused.status_code == 403
        assert refused.json()["code"] == "FORBIDDEN"
        async with client.stream("GET", "/v1/events", headers=moderator.bearer) as response:
            assert response.status_code == 200
            assert (await next_frame(frames(response)))[0] == "hello"


async def test_session_cookie_follows_the_active_account(
    api_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    first, owner = await factory.account("First")
    second = await accounts.create_account(factory.db, "Second", owner.email)
    async with httpx.AsyncClient(base_url=api_server.base_url, timeout=5) as client:
        login = await client.post(
            "/v1/auth/login", json={"email": owner.email, "password": owner.password}
        )
        csrf = login.json()["csrfToken"]
        switched = await client.put(
            "/v1/me/active-account",
            json={"accountId": str(second)},
            headers={"X-CSRF-Token": csrf},
        )
        assert switched.status_code == 200
        async with client.stream("GET", "/v1/events") as response:
            stream = frames(response)
            assert (await next_frame(stream))[1]["accountId"] == str(second)
            await publish(redis, [went_online(first), went_online(second, "kick")])
            event, data = await next_frame(stream)
            assert (event, data["platform"]) == ("status", "kick")


async def test_shutdown_ends_open_streams(
    database_url: str, redis_url: str, factory: Factory, tmp_path: Path
) -> None:
    """A stopping server says bye to its streams and exits promptly instead of waiting."""
    _, owner = await factory.account()
    server = ApiProcess(database_url, redis_url, tmp_path / "api.log")
    server.start()
    try:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            client.stream("GET", "/v1/events", headers=owner.bearer) as response,
        ):
            stream = frames(response)
            assert (await next_frame(stream))[0] == "hello"
            took = await asyncio.to_thread(server.stop)
            assert await next_frame(stream) == ("bye", {"reason": "shutdown"})
            with pytest.raises(StopAsyncIteration):
                await next_frame(stream)
    finally:
        server.stop()
    assert took < 5.0


async def test_documented_in_the_openapi_document(api_server: ApiProcess) -> None:
    async with httpx.AsyncClient(base_url=api_server.base_url, timeout=5) as client:
        document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {"401", "403"} <= set(operation["responses"])
