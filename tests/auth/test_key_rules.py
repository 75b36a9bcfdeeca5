"""Keys are issued by people (issue 10, item 3): only a signed-in session creates or revokes
keys, a key sees only itself, a user has a bounded number of live keys, the list is paged,
and a role change or removal reaches cached principals at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.auth.service import invalidate_member
from lumio.kit.auth_cache import AuthCache
from lumio.kit.permissions import RoleName
from lumio.kit.settings import Settings
from tests.auth.test_sessions import client_on, problem, sign_in
from tests.conftest import Factory


async def test_a_key_cannot_create_a_key(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    account_id, owner = await factory.account()
    viewer = await factory.member(account_id, RoleName.VIEWER)
    before = await db.fetchval("SELECT count(*) FROM api_keys")
    for member in (owner, viewer):
        created = await api.post("/v1/api-keys", json={"name": "child"}, headers=member.bearer)
        assert "session" in problem(created, 403, "FORBIDDEN")["detail"]
    assert await db.fetchval("SELECT count(*) FROM api_keys") == before


async def test_a_key_cannot_revoke_a_sibling_or_itself_and_sees_only_itself(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    _, owner = await factory.account()
    session = await sign_in(api, owner.email, owner.password)
    sibling = (await api.post("/v1/api-keys", json={"name": "b"}, headers=session.write)).json()
    own_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE user_id = $1 AND name = 'test'", owner.user_id
    )
    for key_id in (sibling["apiKey"]["id"], own_id):
        problem(await api.delete(f"/v1/api-keys/{key_id}", headers=owner.bearer), 403, "FORBIDDEN")
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL") == 0
    listed = await api.get("/v1/api-keys", headers=owner.bearer)
    assert [k["id"] for k in listed.json()] == [str(own_id)]
    # The session sees both; revoking one leaves the other working.
    assert len((await api.get("/v1/api-keys", headers=session.cookie)).json()) == 2
    revoked = await api.delete(f"/v1/api-keys/{sibling['apiKey']['id']}", headers=session.write)
    assert revoked.status_code == 204
    assert (await api.get("/v1/channel-status", headers=owner.bearer)).status_code == 200


async def test_live_keys_per_user_are_capped(settings: Settings, factory: Factory) -> None:
    _, owner = await factory.account()  # holds one key already
    capped = settings.updated({"api": {"api_keys_per_user": 3}})
    async with client_on(capped, "http://lumio.test") as api:
        session = await sign_in(api, owner.email, owner.password)
        answers = await asyncio.gather(
            *(api.post("/v1/api-keys", json={}, headers=session.write) for _ in range(5))
        )
        assert sorted(a.status_code for a in answers) == [201, 201, 409, 409, 409]
        problem(answers[[a.status_code for a in answers].index(409)], 409, "CONFLICT")
        # Revoking one frees a place.
        first = next(a for a in answers if a.status_code == 201).json()["apiKey"]["id"]
        await api.delete(f"/v1/api-keys/{first}", headers=session.write)
        again = await api.post("/v1/api-keys", json={}, headers=session.write)
        assert again.status_code == 201


async def test_the_list_is_paginated(api: httpx.AsyncClient, factory: Factory) -> None:
    _, owner = await factory.account()
    session = await sign_in(api, owner.email, owner.password)
    for n in range(4):
        await api.post("/v1/api-keys", json={"name": f"k{n}"}, headers=session.write)
    seen: list[str] = []
    url: str | None = "/v1/api-keys?limit=2"
    while url is not None:
        page = await api.get(url, headers=session.cookie)
        assert page.status_code == 200
        assert len(page.json()) <= 2
        seen += [k["name"] for k in page.json()]
        link = page.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    assert seen == ["test", "k0", "k1", "k2", "k3"]
    problem(await api.get("/v1/api-keys?limit=1000", headers=session.cookie), 400, "BAD_REQUEST")


async def test_last_used_at_is_written_at_most_once_a_minute(
    settings: Settings, db: asyncpg.Pool, factory: Factory
) -> None:
    _, owner = await factory.account()
    uncached = settings.updated({"api": {"auth_cache": timedelta(0)}})
    async with client_on(uncached, "http://lumio.test") as api:
        for _ in range(3):
            assert (await api.get("/v1/channel-status", headers=owner.bearer)).status_code == 200
            stamp = await db.fetchval(
                "SELECT xmin::text || last_used_at::text FROM api_keys WHERE user_id = $1",
                owner.user_id,
            )
            if _ == 0:
                first = stamp
        assert stamp == first  # the row was not written again within the minute


@pytest.fixture
async def cached_pair(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """Two API processes that trust a credential for a long time without asking PostgreSQL."""
    slow = settings.updated({"api": {"auth_cache": timedelta(seconds=300)}})
    async with client_on(slow, "http://lumio.test") as a, client_on(slow, "http://l.test") as b:
        yield a, b


async def test_role_change_and_removal_reach_cached_principals_at_once(
    cached_pair: tuple[httpx.AsyncClient, ...], db: asyncpg.Pool, redis: Redis, factory: Factory
) -> None:
    account_id, _ = await factory.account()
    moderator = await factory.member(account_id, RoleName.MODERATOR)
    for api in cached_pair:
        assert (await api.get("/v1/channel-status", headers=moderator.bearer)).status_code == 200
    await accounts.add_member(db, account_id, moderator.email, RoleName.VIEWER)
    await invalidate_member(db, redis, _cache_of(cached_pair[0]), account_id, moderator.user_id)

    async def status_everywhere() -> set[int]:
        answers = [await a.get("/v1/channel-status", headers=moderator.bearer) for a in cached_pair]
        return {a.status_code for a in answers}

    assert await _soon(status_everywhere, {403})
    # Removal: the caller invalidates (the hashes come from sessions and keys, not members).
    hashes_gone = invalidate_member(
        db, redis, _cache_of(cached_pair[0]), account_id, moderator.user_id
    )
    await db.execute(
        "DELETE FROM account_members WHERE user_id = $1 AND account_id = $2",
        moderator.user_id,
        account_id,
    )
    await hashes_gone
    assert await _soon(status_everywhere, {401})


def _cache_of(client: httpx.AsyncClient) -> AuthCache:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    cache: AuthCache = transport.app.state.resources.auth_cache  # type: ignore[attr-defined]
    return cache


async def _soon(check: Callable[[], Awaitable[set[int]]], want: set[int]) -> bool:
    for _ in range(40):
        if await check() == want:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_key_in_use_is_read_again_in_the_background_before_it_expires(
    settings: Settings, db: asyncpg.Pool, factory: Factory
) -> None:
    account_id, _ = await factory.account()
    moderator = await factory.member(account_id, RoleName.MODERATOR)
    short = settings.updated({"api": {"auth_cache": timedelta(seconds=2)}})
    async with client_on(short, "http://lumio.test") as client:
        cache = _cache_of(client)
        cache._jitter = lambda: 1.0  # lives exactly 2 s, refreshed from 1.5 s on
        for _ in range(20):  # (the invalidation listener clears the cache once it subscribes)
            answer = await client.get("/v1/channel-status", headers=moderator.bearer)
            assert answer.status_code == 200
            if cache._entries:
                break
            await asyncio.sleep(0.05)
        # Removed without an invalidation (as by hand in psql): the cache cannot know yet.
        await db.execute("DELETE FROM account_members WHERE user_id = $1", moderator.user_id)
        await asyncio.sleep(1.6)  # past the refresh point, before the expiry
        # Served from the cache, which claims a refresh: the answer is still the cached one.
        assert (await client.get("/v1/channel-status", headers=moderator.bearer)).status_code == 200
        for _ in range(40):
            if not cache._entries:
                break
            await asyncio.sleep(0.02)
        assert not cache._entries  # the background read found the key gone and dropped it
