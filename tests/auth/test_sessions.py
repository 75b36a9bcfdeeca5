"""Sessions, CSRF, switching the active account and API keys, end to end (DESIGN §7, §8)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.api.app import create_app
from lumio.kit.permissions import RoleName
from lumio.kit.settings import Settings
from lumio.manual_connect.service import manual_key
from tests.conftest import Factory, Member, asgi_client
from tests.waiting import eventually

PROBLEM_JSON = "application/problem+json"
START = "mutation { startSpotifyManual { active remainingSeconds } }"
STOP = "mutation { stopSpotifyManual }"
SWITCH = "mutation ($id: ID!) { switchAccount(accountId: $id) { id name role active } }"
CHANNELS = "{ channelStatus { platform isOnline } }"
KEY_FIELDS = {"id", "prefix", "name", "createdAt", "revokedAt", "lastUsedAt"}


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str
    body: dict[str, Any]

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"lumio_session={self.token}"}

    @property
    def write(self) -> dict[str, str]:
        return {**self.cookie, "X-CSRF-Token": self.csrf}


def cookie_attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, attributes with lower-case names) of one Set-Cookie header."""
    first, *rest = [part.strip() for part in set_cookie.split(";")]
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, val = part.partition("=")
        attributes[key.strip().lower()] = val.strip()
    return name, value, attributes


def session_cookie(response: httpx.Response) -> tuple[str, dict[str, str]]:
    found = [
        cookie_attributes(h)
        for h in response.headers.get_list("set-cookie")
        if h.startswith("lumio_session=")
    ]
    assert len(found) == 1, response.headers
    _, value, attributes = found[0]
    return value, attributes


async def sign_in(api: httpx.AsyncClient, email: str, password: str) -> Session:
    response = await api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token, _ = session_cookie(response)
    # Each request below says which cookie it carries.
    api.cookies.clear()
    body: dict[str, Any] = response.json()
    return Session(token, body["csrfToken"], body)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["detail"]
    return body


def graphql_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["errors"], body
    assert code in {e["extensions"]["code"] for e in body["errors"]}, body
    return body


async def platforms(api: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await api.get("/v1/channel-status", headers=headers)
    assert response.status_code == 200, response.text
    return [row["platform"] for row in response.json()]


async def put_status(db: asyncpg.Pool, account_id: UUID, *platform_names: str) -> None:
    for platform in platform_names:
        await db.execute(
            "INSERT INTO channel_status (account_id, platform, is_online, started_at, updated_at)"
            " VALUES ($1, $2, TRUE, now(), now())",
            account_id,
            platform,
        )


async def active_account_of(db: asyncpg.Pool, token: str) -> UUID | None:
    value: UUID | None = await db.fetchval(
        "SELECT active_account_id FROM sessions WHERE token_hash = $1",
        hashlib.sha256(token.encode()).digest(),
    )
    return value


@contextlib.asynccontextmanager
async def client_on(app_settings: Settings, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an API process of its own (its own credential cache), built from settings."""
    application = create_app(app_settings)
    async with (
        application.router.lifespan_context(application),
        asgi_client(application, base_url) as client,
    ):
        yield client


@pytest.fixture
async def other_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second API process on the same database and Redis."""
    async with client_on(settings, "http://lumio.test") as client:
        yield client


@pytest.fixture
async def https_api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, "https://lumio.test") as client:
        yield client


@dataclass(frozen=True)
class TwoAccounts:
    """A user who owns account A and moderates account B, and a stranger's account C."""

    owner: Member
    a: UUID
    b: UUID
    c: UUID


@pytest.fixture
async def two(db: asyncpg.Pool, factory: Factory) -> TwoAccounts:
    a, owner = await factory.account("Account A")
    b, _ = await factory.account("Account B")
    c, _ = await factory.account("Account C")
    await accounts.add_member(db, b, owner.email, RoleName.MODERATOR)
    await put_status(db, a, "twitch")
    await put_status(db, b, "kick", "youtube")
    await put_status(db, c, "trovo")
    return TwoAccounts(owner, a, b, c)


# --- signing in -------------------------------------------------------------------------------


async def test_login_sets_an_httponly_samesite_lax_cookie(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory, settings: Settings
) -> None:
    account_id, owner = await factory.account()
    response = await api.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert response.status_code == 200, response.text
    token, attributes = session_cookie(response)
    assert token
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert "secure" not in attributes  # plain http
    assert attributes["path"] == "/"
    assert int(attributes["max-age"]) == settings.api.session_ttl.total_seconds()

    body = response.json()
    assert body["userId"] == str(owner.user_id)
    assert body["activeAccountId"] == str(account_id)
    assert body["accounts"] == [
        {"id": str(account_id), "name": "Streamer", "role": "owner", "active": True}
    ]
    assert isinstance(body["csrfToken"], str)
    assert len(body["csrfToken"]) >= 32
    assert body["csrfToken"] != token

    # The browser's cookie jar signs the next request in.
    me = await api.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["userId"] == str(owner.user_id)

    # Only the token's hash is stored.
    rows = await db.fetch("SELECT s::text AS row, token_hash FROM sessions s")
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).digest()
    assert token not in rows[0]["row"]


async def test_login_cookie_is_secure_over_https(
    https_api: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    response = await https_api.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert response.status_code == 200, response.text
    _, attributes = session_cookie(response)
    assert "secure" in attributes
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    me = await https_api.get("/v1/me")
    assert me.status_code == 200, me.text


async def test_email_is_matched_case_insensitively(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    session = await sign_in(api, f"  {owner.email.upper()} ", owner.password)
    assert session.body["userId"] == str(owner.user_id)


@pytest.mark.parametrize("wrong", ["password", "email", "both", "bad-email"])
async def test_wrong_credentials_are_401_with_one_message(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory, wrong: str
) -> None:
    _, owner = await factory.account()
    email = {"email": "nobody@example.com", "both": "nobody@example.com"}.get(wrong, owner.email)
    if wrong == "bad-email":
        email = "not-an-email"
    password = "wrong password" if wrong in ("password", "both") else owner.password
    response = await api.post("/v1/auth/login", json={"email": email, "password": password})
    body = problem(response, 401, "UNAUTHENTICATED")
    # The same answer whichever part was wrong: it must not tell which emails exist.
    assert body["detail"] == "wrong email or password"
    assert "set-cookie" not in response.headers
    assert await db.fetchval("SELECT count(*) FROM sessions") == 0


async def test_me_returns_accounts_and_the_csrf_token(
    api: httpx.AsyncClient, two: TwoAccounts
) -> None:
    session = await sign_in(api, two.owner.email, two.owner.password)
    response = await api.get("/v1/me", headers=session.cookie)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["csrfToken"] == session.csrf
    assert body["activeAccountId"] == str(two.a)
    assert body["accounts"] == [
        {"id": str(two.a), "name": "Account A", "role": "owner", "active": True},
        {"id": str(two.b), "name": "Account B", "role": "moderator", "active": False},
    ]
    listed = await api.get("/v1/me/accounts", headers=session.cookie)
    assert listed.json() == body["accounts"]
    gql = await api.get(
        "/graphql", params={"query": "{ myAccounts { id role active } }"}, headers=session.cookie
    )
    assert gql.json() == {
        "data": {
            "myAccounts": [
                {"id": str(two.a), "role": "owner", "active": True},
                {"id": str(two.b), "role": "moderator", "active": False},
            ]
        }
    }

    # Through an API key: no CSRF token, and only the account the key is bound to.
    by_key = await api.get("/v1/me", headers=two.owner.bearer)
    assert by_key.status_code == 200
    assert by_key.json()["csrfToken"] is None
    assert [a["id"] for a in by_key.json()["accounts"]] == [str(two.a)]


async def test_me_without_credentials_is_401(api: httpx.AsyncClient) -> None:
    problem(await api.get("/v1/me"), 401, "UNAUTHENTICATED")


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.fixture
async def owner_session(
    api: httpx.AsyncClient, factory: Factory, redis: Redis
) -> AsyncIterator[tuple[Member, Session]]:
    _, owner = await factory.account()
    session = await sign_in(api, owner.email, owner.password)
    yield owner, session
    await redis.delete(manual_key(owner.account_id))


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "wrong"])
async def test_cookie_writes_without_the_csrf_token_are_403(
    api: httpx.AsyncClient,
    redis: Redis,
    owner_session: tuple[Member, Session],
    csrf: str | None,
) -> None:
    owner, session = owner_session
    key = manual_key(owner.account_id)
    headers = dict(session.cookie)
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf

    start = await api.post("/v1/spotify/manual-connect", headers=headers)
    body = problem(start, 403, "FORBIDDEN")
    assert "X-CSRF-Token" in body["detail"]
    assert await redis.exists(key) == 0
    gql_start = await api.post("/graphql", json={"query": START}, headers=headers)
    graphql_error(gql_start, 403, "FORBIDDEN")
    assert await redis.exists(key) == 0

    # Now it is on; stopping without the token leaves it on.
    started = await api.post("/v1/spotify/manual-connect", headers=session.write)
    assert started.status_code == 200, started.text
    assert started.json()["active"] is True
    assert await redis.get(key) == str(owner.user_id).encode()
    stop = await api.delete("/v1/spotify/manual-connect", headers=headers)
    problem(stop, 403, "FORBIDDEN")
    gql_stop = await api.post("/graphql", json={"query": STOP}, headers=headers)
    graphql_error(gql_stop, 403, "FORBIDDEN")
    assert await redis.get(key) == str(owner.user_id).encode()

    # A read needs no token.
    status = await api.get("/v1/spotify/manual-connect", headers=headers)
    assert status.status_code == 200
    assert status.json()["active"] is True


async def test_another_sessions_csrf_token_does_not_pass(
    api: httpx.AsyncClient, redis: Redis, owner_session: tuple[Member, Session]
) -> None:
    owner, session = owner_session
    second = await sign_in(api, owner.email, owner.password)
    assert second.csrf != session.csrf
    headers = {**session.cookie, "X-CSRF-Token": second.csrf}
    problem(await api.post("/v1/spotify/manual-connect", headers=headers), 403, "FORBIDDEN")
    assert await redis.exists(manual_key(owner.account_id)) == 0


async def test_cookie_writes_with_the_csrf_token_succeed(
    api: httpx.AsyncClient,
    redis: Redis,
    owner_session: tuple[Member, Session],
    settings: Settings,
) -> None:
    owner, session = owner_session
    key = manual_key(owner.account_id)
    start = await api.post("/v1/spotify/manual-connect", headers=session.write)
    assert start.status_code == 200, start.text
    assert start.json()["active"] is True
    ttl = settings.api.manual_connect_ttl.total_seconds()
    assert 0 < start.json()["remainingSeconds"] <= ttl
    assert 0 < await redis.ttl(key) <= ttl

    stop = await api.delete("/v1/spotify/manual-connect", headers=session.write)
    assert stop.status_code == 200, stop.text
    assert stop.json() == {"stopped": True}
    assert await redis.exists(key) == 0

    gql = await api.post("/graphql", json={"query": START}, headers=session.write)
    assert gql.status_code == 200, gql.text
    assert gql.json()["data"]["startSpotifyManual"]["active"] is True
    assert await redis.exists(key) == 1
    gql = await api.post("/graphql", json={"query": STOP}, headers=session.write)
    assert gql.json() == {"data": {"stopSpotifyManual": True}}
    assert await redis.exists(key) == 0


async def test_other_cookie_writes_need_the_csrf_token(
    api: httpx.AsyncClient, db: asyncpg.Pool, two: TwoAccounts
) -> None:
    session = await sign_in(api, two.owner.email, two.owner.password)
    keys_before = await db.fetchval("SELECT count(*) FROM api_keys")

    switch = await api.put(
        "/v1/me/active-account", json={"accountId": str(two.b)}, headers=session.cookie
    )
    problem(switch, 403, "FORBIDDEN")
    gql = await api.post(
        "/graphql",
        json={"query": SWITCH, "variables": {"id": str(two.b)}},
        headers=session.cookie,
    )
    graphql_error(gql, 403, "FORBIDDEN")
    assert await active_account_of(db, session.token) == two.a

    created = await api.post("/v1/api-keys", json={"name": "x"}, headers=session.cookie)
    problem(created, 403, "FORBIDDEN")
    assert await db.fetchval("SELECT count(*) FROM api_keys") == keys_before

    key_id = await db.fetchval("SELECT id FROM api_keys WHERE user_id = $1", two.owner.user_id)
    revoke = await api.delete(f"/v1/api-keys/{key_id}", headers=session.cookie)
    problem(revoke, 403, "FORBIDDEN")
    assert await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", key_id) is None

    logout = await api.post("/v1/auth/logout", headers=session.cookie)
    problem(logout, 403, "FORBIDDEN")
    assert (await api.get("/v1/me", headers=session.cookie)).status_code == 200


async def test_api_key_writes_need_no_csrf_token(
    api: httpx.AsyncClient, redis: Redis, factory: Factory
) -> None:
    _, owner = await factory.account()
    try:
        response = await api.post("/v1/spotify/manual-connect", headers=owner.bearer)
        assert response.status_code == 200, response.text
        assert await redis.exists(manual_key(owner.account_id)) == 1
    finally:
        await redis.delete(manual_key(owner.account_id))


# --- logout -------------------------------------------------------------------------------------


async def test_logout_makes_the_cookie_useless_at_once(
    api: httpx.AsyncClient,
    other_process: httpx.AsyncClient,
    db: asyncpg.Pool,
    owner_session: tuple[Member, Session],
) -> None:
    _, session = owner_session
    # Used on both API processes, so that it sits in both credential caches.
    assert (await api.get("/v1/me", headers=session.cookie)).status_code == 200
    assert (await other_process.get("/v1/me", headers=session.cookie)).status_code == 200

    response = await api.post("/v1/auth/logout", headers=session.write)
    assert response.status_code == 204, response.text
    _, attributes = session_cookie(response)
    assert attributes.get("max-age") == "0"
    assert await db.fetchval("SELECT count(*) FROM sessions") == 0

    problem(await api.get("/v1/me", headers=session.cookie), 401, "UNAUTHENTICATED")
    problem(await api.get("/v1/channel-status", headers=session.cookie), 401, "UNAUTHENTICATED")
    gql = await api.post("/graphql", json={"query": START}, headers=session.write)
    graphql_error(gql, 401, "UNAUTHENTICATED")
    again = await api.post("/v1/auth/logout", headers=session.write)
    problem(again, 401, "UNAUTHENTICATED")

    # The other process hears of it through Redis, well before its cache entry would expire.
    async def refused_there() -> bool:
        answer = await other_process.get("/v1/me", headers=session.cookie)
        return answer.status_code == 401

    await eventually(refused_there, 3.0, "refused by the other process")


async def test_logout_ends_only_that_session(
    api: httpx.AsyncClient, owner_session: tuple[Member, Session]
) -> None:
    owner, session = owner_session
    second = await sign_in(api, owner.email, owner.password)
    assert (await api.post("/v1/auth/logout", headers=session.write)).status_code == 204
    assert (await api.get("/v1/me", headers=second.cookie)).status_code == 200
    assert (await api.get("/v1/me", headers=owner.bearer)).status_code == 200


async def test_an_api_key_cannot_log_out(api: httpx.AsyncClient, factory: Factory) -> None:
    _, owner = await factory.account()
    problem(await api.post("/v1/auth/logout", headers=owner.bearer), 400, "BAD_REQUEST")
    assert (await api.get("/v1/me", headers=owner.bearer)).status_code == 200


# --- switching the active account ---------------------------------------------------------------


async def test_switching_changes_what_channel_status_returns(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, two: TwoAccounts
) -> None:
    session = await sign_in(api, two.owner.email, two.owner.password)
    assert session.body["activeAccountId"] == str(two.a)
    assert await platforms(api, session.cookie) == ["twitch"]

    # REST
    switched = await api.put(
        "/v1/me/active-account", json={"accountId": str(two.b)}, headers=session.write
    )
    assert switched.status_code == 200, switched.text
    body = switched.json()
    assert body["activeAccountId"] == str(two.b)
    assert body["csrfToken"] == session.csrf
    assert {a["id"]: a["active"] for a in body["accounts"]} == {str(two.a): False, str(two.b): True}
    assert await active_account_of(db, session.token) == two.b
    assert await platforms(api, session.cookie) == ["kick", "youtube"]
    gql_read = await api.get("/graphql", params={"query": CHANNELS}, headers=session.cookie)
    assert [r["platform"] for r in gql_read.json()["data"]["channelStatus"]] == ["kick", "youtube"]

    # The permissions follow: a moderator of B may read but not start the manual connect.
    start = await api.post("/v1/spotify/manual-connect", headers=session.write)
    problem(start, 403, "FORBIDDEN")
    assert await redis.exists(manual_key(two.b)) == 0

    # GraphQL
    back = await api.post(
        "/graphql",
        json={"query": SWITCH, "variables": {"id": str(two.a)}},
        headers=session.write,
    )
    assert back.status_code == 200, back.text
    assert back.json() == {
        "data": {
            "switchAccount": [
                {"id": str(two.a), "name": "Account A", "role": "owner", "active": True},
                {"id": str(two.b), "name": "Account B", "role": "moderator", "active": False},
            ]
        }
    }
    assert await active_account_of(db, session.token) == two.a
    assert await platforms(api, session.cookie) == ["twitch"]
    me = await api.get("/v1/me", headers=session.cookie)
    assert me.json()["activeAccountId"] == str(two.a)


async def test_switching_is_per_session(
    api: httpx.AsyncClient, db: asyncpg.Pool, two: TwoAccounts
) -> None:
    first = await sign_in(api, two.owner.email, two.owner.password)
    second = await sign_in(api, two.owner.email, two.owner.password)
    switched = await api.put(
        "/v1/me/active-account", json={"accountId": str(two.b)}, headers=first.write
    )
    assert switched.status_code == 200
    assert await platforms(api, first.cookie) == ["kick", "youtube"]
    assert await platforms(api, second.cookie) == ["twitch"]


async def test_switching_to_a_foreign_account_is_404_and_changes_nothing(
    api: httpx.AsyncClient, db: asyncpg.Pool, two: TwoAccounts
) -> None:
    session = await sign_in(api, two.owner.email, two.owner.password)
    nowhere = UUID("00000000-0000-4000-8000-000000000000")
    for target in (two.c, nowhere):
        rest = await api.put(
            "/v1/me/active-account", json={"accountId": str(target)}, headers=session.write
        )
        body = problem(rest, 404, "NOT_FOUND")
        # The same answer for an account that exists and one that does not.
        assert body["detail"] == "you are not a member of that account"
        gql = await api.post(
            "/graphql",
            json={"query": SWITCH, "variables": {"id": str(target)}},
            headers=session.write,
        )
        answer = graphql_error(gql, 200, "NOT_FOUND")
        assert answer["data"] is None
        assert await active_account_of(db, session.token) == two.a
        assert await platforms(api, session.cookie) == ["twitch"]


async def test_an_api_key_cannot_switch(
    api: httpx.AsyncClient, db: asyncpg.Pool, two: TwoAccounts
) -> None:
    key_row = await db.fetchval(
        "SELECT (id, name, account_id, revoked_at)::text FROM api_keys WHERE user_id = $1",
        two.owner.user_id,
    )
    rest = await api.put(
        "/v1/me/active-account", json={"accountId": str(two.b)}, headers=two.owner.bearer
    )
    body = problem(rest, 400, "BAD_REQUEST")
    assert "API key" in body["detail"]
    gql = await api.post(
        "/graphql",
        json={"query": SWITCH, "variables": {"id": str(two.b)}},
        headers=two.owner.bearer,
    )
    answer = graphql_error(gql, 200, "BAD_REQUEST")
    assert answer["data"] is None
    assert await platforms(api, two.owner.bearer) == ["twitch"]
    assert (
        await db.fetchval(
            "SELECT (id, name, account_id, revoked_at)::text FROM api_keys WHERE user_id = $1",
            two.owner.user_id,
        )
        == key_row
    )


# --- API keys -----------------------------------------------------------------------------------


async def test_api_key_lifecycle(
    api: httpx.AsyncClient, db: asyncpg.Pool, two: TwoAccounts
) -> None:
    session = await sign_in(api, two.owner.email, two.owner.password)
    created = await api.post("/v1/api-keys", json={"name": "  ci  "}, headers=session.write)
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    info = body["apiKey"]
    assert key.startswith("lumio_")
    assert len(key) >= 40
    assert info["name"] == "ci"
    assert info["prefix"] == key[:12]
    assert info["revokedAt"] is None
    assert set(info) == KEY_FIELDS

    # It is bound to the session's active account and works at once.
    bearer = {"Authorization": f"Bearer {key}"}
    assert await platforms(api, bearer) == ["twitch"]

    # Shown once: the list never carries the secret.
    listed = await api.get("/v1/api-keys", headers=session.cookie)
    assert listed.status_code == 200
    assert key not in listed.text
    assert key[12:] not in listed.text
    mine = [k for k in listed.json() if k["id"] == info["id"]]
    # Used just now (a cache miss records it).
    assert mine[0].pop("lastUsedAt") is not None
    assert mine == [{k: v for k, v in info.items() if k != "lastUsedAt"}]
    assert all(set(k) == KEY_FIELDS for k in listed.json())

    # Stored as a SHA-256 hash; the plaintext is nowhere in the table.
    row = await db.fetchrow(
        "SELECT key_hash, k::text AS all_columns FROM api_keys k WHERE id = $1", UUID(info["id"])
    )
    assert row is not None
    assert row["key_hash"] == hashlib.sha256(key.encode()).digest()
    assert key not in row["all_columns"]
    assert key[12:] not in row["all_columns"]
    every_row = await db.fetch("SELECT k::text AS r FROM api_keys k")
    assert not [r for r in every_row if key[12:] in r["r"]]

    # Revoke: it stops working at once; the list shows when.
    revoked = await api.delete(f"/v1/api-keys/{info['id']}", headers=session.write)
    assert revoked.status_code == 204, revoked.text
    problem(await api.get("/v1/channel-status", headers=bearer), 401, "UNAUTHENTICATED")
    listed = await api.get("/v1/api-keys", headers=session.cookie)
    (after,) = [k for k in listed.json() if k["id"] == info["id"]]
    assert after["revokedAt"] is not None
    # The session's other key is untouched.
    assert await platforms(api, two.owner.bearer) == ["twitch"]


async def test_an_api_key_belongs_to_the_active_account(
    api: httpx.AsyncClient, two: TwoAccounts
) -> None:
    session = await sign_in(api, two.owner.email, two.owner.password)
    await api.put("/v1/me/active-account", json={"accountId": str(two.b)}, headers=session.write)
    created = await api.post("/v1/api-keys", json={"name": "b"}, headers=session.write)
    assert created.status_code == 201, created.text
    bearer = {"Authorization": f"Bearer {created.json()['key']}"}
    assert await platforms(api, bearer) == ["kick", "youtube"]
    me = await api.get("/v1/me", headers=bearer)
    assert me.json()["activeAccountId"] == str(two.b)
    # The keys of account A are not listed while B is active.
    listed = await api.get("/v1/api-keys", headers=session.cookie)
    assert [k["name"] for k in listed.json()] == ["b"]


async def test_revocation_reaches_other_api_processes(
    api: httpx.AsyncClient, other_process: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    session = await sign_in(api, owner.email, owner.password)
    created = await api.post("/v1/api-keys", json={"name": "shared"}, headers=session.write)
    bearer = {"Authorization": f"Bearer {created.json()['key']}"}
    # Cached in the other process.
    assert (await other_process.get("/v1/channel-status", headers=bearer)).status_code == 200
    revoked = await api.delete(
        f"/v1/api-keys/{created.json()['apiKey']['id']}", headers=session.write
    )
    assert revoked.status_code == 204

    async def refused_there() -> bool:
        answer = await other_process.get("/v1/channel-status", headers=bearer)
        return answer.status_code == 401

    await eventually(refused_there, 3.0, "refused by the other process")


@pytest.fixture
async def uncached_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An API process that trusts no credential without asking PostgreSQL."""
    async with client_on(
        settings.updated({"api": {"auth_cache": 0}}), "http://lumio.test"
    ) as client:
        yield client


async def test_a_key_stops_working_when_its_user_leaves_the_account(
    uncached_api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory
) -> None:
    account_id, owner = await factory.account()
    moderator = await factory.member(account_id, RoleName.MODERATOR)
    assert (
        await uncached_api.get("/v1/channel-status", headers=moderator.bearer)
    ).status_code == 200
    session = await sign_in(uncached_api, moderator.email, moderator.password)

    # A role change follows at once...
    await accounts.add_member(db, account_id, moderator.email, RoleName.VIEWER)
    denied = await uncached_api.get("/v1/channel-status", headers=moderator.bearer)
    problem(denied, 403, "FORBIDDEN")

    # ... and so does leaving the account.
    removed = await db.execute(
        "DELETE FROM account_members WHERE user_id = $1 AND account_id = $2",
        moderator.user_id,
        account_id,
    )
    assert removed == "DELETE 1"
    problem(
        await uncached_api.get("/v1/channel-status", headers=moderator.bearer),
        401,
        "UNAUTHENTICATED",
    )
    # A session of that user stays signed in but reaches nothing of the account.
    problem(await uncached_api.get("/v1/channel-status", headers=session.cookie), 403, "FORBIDDEN")
    me = await uncached_api.get("/v1/me", headers=session.cookie)
    assert me.json()["accounts"] == []
    assert me.json()["activeAccountId"] is None
    # The owner's key is not affected.
    assert (await uncached_api.get("/v1/channel-status", headers=owner.bearer)).status_code == 200


async def test_a_removed_member_key_is_refused_after_the_auth_cache_expires(
    settings: Settings, db: asyncpg.Pool, factory: Factory
) -> None:
    short = settings.updated({"api": {"auth_cache": 0.3}})
    async with client_on(short, "http://lumio.test") as client:
        account_id, _ = await factory.account()
        moderator = await factory.member(account_id, RoleName.MODERATOR)
        assert (await client.get("/v1/channel-status", headers=moderator.bearer)).status_code == 200
        await db.execute("DELETE FROM account_members WHERE user_id = $1", moderator.user_id)
        await asyncio.sleep(0.4)
        problem(
            await client.get("/v1/channel-status", headers=moderator.bearer),
            401,
            "UNAUTHENTICATED",
        )
