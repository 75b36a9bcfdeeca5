"""No tenant can starve another through live streams (issue 10, item 1): one subscription per
process fans out to every stream, and streams are capped per credential and per process."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
from redis.asyncio import Redis

from lumio.events.publisher import publish
from lumio.kit.permissions import RoleName
from lumio.manual_connect.service import manual_key
from tests.apiserver import ApiProcess
from tests.conftest import Factory, Member
from tests.live.test_events import frames, next_frame, went_online


async def open_streams(
    stack: contextlib.AsyncExitStack, client: httpx.AsyncClient, member: Member, count: int
) -> list[httpx.Response]:
    opened = []
    for _ in range(count):
        response = await stack.enter_async_context(
            client.stream("GET", "/v1/events", headers=member.bearer)
        )
        opened.append(response)
    return opened


async def test_one_key_gets_ten_streams_then_429_and_others_are_served(
    api_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Greedy")
    other, neighbour = await factory.account("Neighbour")
    limits = httpx.Limits(max_connections=300)
    async with (
        httpx.AsyncClient(base_url=api_server.base_url, timeout=10, limits=limits) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        streams = await open_streams(stack, client, owner, 10)
        assert [s.status_code for s in streams] == [200] * 10
        refused = await asyncio.gather(
            *(client.get("/v1/events", headers=owner.bearer) for _ in range(190))
        )
        assert {r.status_code for r in refused} == {429}
        assert refused[0].headers["content-type"] == "application/problem+json"
        assert refused[0].json()["code"] == "TOO_MANY_REQUESTS"
        assert int(refused[0].headers["retry-after"]) >= 1
        # Another account is served as usual, Redis included.
        try:
            started = await client.post("/v1/spotify/manual-connect", headers=neighbour.bearer)
            assert started.status_code == 200, started.text
        finally:
            await redis.delete(manual_key(other))
        assert (await client.get("/healthz")).json()["redis"] is True
        # Every open stream still gets its account's events through the one subscription.
        readers = [frames(s) for s in streams]
        for reader in readers:
            assert (await next_frame(reader))[0] == "hello"
        await publish(redis, [went_online(account)])
        for reader in readers:
            assert (await next_frame(reader))[0] == "status"
    # Closed streams give their places back.
    async with (
        httpx.AsyncClient(base_url=api_server.base_url, timeout=10) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        for _ in range(50):
            await asyncio.sleep(0.1)
            probe = await client.get("/healthz")
            assert probe.status_code == 200
            async with client.stream("GET", "/v1/events", headers=owner.bearer) as again:
                if again.status_code == 200:
                    break
        assert again.status_code == 200


async def test_many_streams_leave_the_redis_pool_alone(
    api_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    """120 streams (12 keys x 10) used to hold 120 Redis connections: more than the pool."""
    account, _ = await factory.account("Many")
    members = [await factory.member(account, RoleName.MODERATOR) for _ in range(12)]
    other, neighbour = await factory.account("Neighbour")
    limits = httpx.Limits(max_connections=200)
    async with (
        httpx.AsyncClient(base_url=api_server.base_url, timeout=10, limits=limits) as client,
        contextlib.AsyncExitStack() as stack,
    ):
        for member in members:
            assert {s.status_code for s in await open_streams(stack, client, member, 10)} == {200}
        clients_before = await redis.client_list()
        try:
            started = await client.post("/v1/spotify/manual-connect", headers=neighbour.bearer)
            assert started.status_code == 200, started.text
        finally:
            await redis.delete(manual_key(other))
        assert (await client.get("/healthz")).json()["redis"] is True
        # Far fewer Redis clients than streams: the streams share one subscription.
        assert len(clients_before) < 60


async def test_streams_per_process_are_capped(
    database_url: str, redis_url: str, factory: Factory, tmp_path: Path
) -> None:
    account, owner = await factory.account()
    moderator = await factory.member(account, RoleName.MODERATOR)
    env = {"LUMIO_SSE_MAX_PER_PROCESS": "3"}
    with ApiProcess(database_url, redis_url, tmp_path / "api.log", env=env) as server:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=10) as client,
            contextlib.AsyncExitStack() as stack,
        ):
            await open_streams(stack, client, owner, 2)
            await open_streams(stack, client, moderator, 1)
            refused = await client.get("/v1/events", headers=moderator.bearer)
            assert refused.status_code == 429
            assert "server" in refused.json()["detail"]
