"""Bad input anywhere: a clear 4xx error, nothing written, nothing lost (DESIGN §7, §8, §9).

Every test here sends a bad request and then proves that nothing changed: the rows of every
table and the manual-connect key of the accounts involved. The key is planted with a sentinel
value and a TTL shorter than the manual connect period, so that an accidental start (which
writes the user id and a full TTL) and an accidental stop (which deletes the key) both show.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest
from graphql import get_introspection_query
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.auth.repository import insert_session
from lumio.kit.permissions import RoleName
from lumio.kit.secrets import csrf_token_for, new_session_token, token_hash
from lumio.kit.settings import Settings
from lumio.manual_connect.service import manual_key
from tests.conftest import Factory, Member

PROBLEM_JSON = "application/problem+json"
SENTINEL = "sentinel-before-the-bad-request"
SENTINEL_TTL = 1000
TABLES = (
    "users",
    "accounts",
    "roles",
    "account_members",
    "sessions",
    "api_keys",
    "channel_status",
)
START = "mutation { startSpotifyManual { active remainingSeconds } }"
STOP = "mutation { stopSpotifyManual }"


# --- the world and its snapshot ---------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str

    @property
    def cookie(self) -> dict[str, str]:
        return {"Cookie": f"lumio_session={self.token}"}

    @property
    def write(self) -> dict[str, str]:
        return {**self.cookie, "X-CSRF-Token": self.csrf}


@dataclass(frozen=True)
class World:
    owner: Member
    other_owner: Member

    @property
    def account_id(self) -> UUID:
        return self.owner.account_id

    @property
    def other_account_id(self) -> UUID:
        return self.other_owner.account_id


@dataclass(frozen=True)
class State:
    rows: dict[str, list[str]]
    manual: dict[UUID, tuple[object, int]]


async def snapshot(db: asyncpg.Pool, redis: Redis, world: World) -> State:
    rows: dict[str, list[str]] = {}
    for table in TABLES:
        # last_used_at records a key's use (at most once a minute), not a change.
        records = await db.fetch(
            f"SELECT (to_jsonb(t) - 'last_used_at')::text AS row FROM {table} t ORDER BY 1"
        )
        rows[table] = [r["row"] for r in records]
    manual: dict[UUID, tuple[object, int]] = {}
    for account_id in (world.account_id, world.other_account_id):
        key = manual_key(account_id)
        manual[account_id] = (await redis.get(key), int(await redis.ttl(key)))
    return State(rows, manual)


async def assert_unchanged(db: asyncpg.Pool, redis: Redis, world: World, before: State) -> None:
    after = await snapshot(db, redis, world)
    assert after.rows == before.rows, "a bad request changed the database"
    for account_id, (value, ttl) in before.manual.items():
        value_after, ttl_after = after.manual[account_id]
        assert value_after == value, "a bad request changed the manual-connect key"
        # Not renewed: the TTL only runs down.
        assert 0 < ttl_after <= ttl, "a bad request renewed or removed the manual-connect key"


@pytest.fixture
async def world(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, factory: Factory
) -> AsyncIterator[World]:
    account_id, owner = await factory.account("Bad input A")
    _, other_owner = await factory.account("Bad input B")
    await db.execute(
        "INSERT INTO channel_status (account_id, platform, is_online, stream_title, category,"
        " viewer_count, started_at, updated_at)"
        " VALUES ($1, 'twitch', TRUE, 'live', 'Music', 12, now(), now())",
        account_id,
    )
    for member in (owner, other_owner):
        await redis.set(manual_key(member.account_id), SENTINEL, ex=SENTINEL_TTL)
    yield World(owner, other_owner)
    for member in (owner, other_owner):
        await redis.delete(manual_key(member.account_id))


@pytest.fixture
async def owner_write(db: asyncpg.Pool, world: World) -> dict[str, str]:
    """A session of the owner with its CSRF token (API keys are managed only so), made
    directly in the database: cheaper than an Argon2 sign-in for every test."""
    token = new_session_token()
    expires = datetime.now(UTC) + timedelta(hours=1)
    await insert_session(db, token_hash(token), world.owner.user_id, world.account_id, expires)
    return Session(token, csrf_token_for(token)).write


@pytest.fixture
async def before(
    db: asyncpg.Pool, redis: Redis, world: World, owner_write: dict[str, str]
) -> State:
    return await snapshot(db, redis, world)


async def sign_in(api: httpx.AsyncClient, member: Member) -> Session:
    response = await api.post(
        "/v1/auth/login", json={"email": member.email, "password": member.password}
    )
    assert response.status_code == 200, response.text
    token = response.cookies["lumio_session"]
    # Send the cookie explicitly from here on, so that each request says what it carries.
    api.cookies.clear()
    return Session(token, response.json()["csrfToken"])


# --- answers ------------------------------------------------------------------------------------


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def graphql_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    errors = body["errors"]
    assert errors, body
    assert all(isinstance(e["message"], str) and e["message"] for e in errors)
    assert code in {e["extensions"]["code"] for e in errors}, errors
    return body


def messages(body: dict[str, Any]) -> str:
    return " | ".join(e["message"] for e in body["errors"])


# --- REST: malformed and non-JSON bodies --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/auth/login"),
        ("POST", "/v1/api-keys"),
        ("PUT", "/v1/me/active-account"),
    ],
)
@pytest.mark.parametrize("body", [b'{"name": ', b"{name: 'x'}", b"\xff\xfe", b"[1, 2,"])
async def test_rest_malformed_json_is_refused(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    method: str,
    path: str,
    body: bytes,
) -> None:
    response = await api.request(
        method,
        path,
        content=body,
        headers={**world.owner.bearer, "Content-Type": "application/json"},
    )
    answer = problem(response, 400, "BAD_REQUEST")
    assert "json" in answer["detail"].lower()
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_login_refuses_a_non_json_body(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    content_type: str,
) -> None:
    # A form on another site can post text/plain or a form without a CORS preflight.
    payload = orjson.dumps({"email": world.owner.email, "password": world.owner.password})
    response = await api.post(
        "/v1/auth/login", content=payload, headers={"Content-Type": content_type}
    )
    problem(response, 400, "BAD_REQUEST")
    assert "set-cookie" not in response.headers
    await assert_unchanged(db, redis, world, before)


async def test_login_without_a_content_type_is_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, before: State
) -> None:
    payload = orjson.dumps({"email": world.owner.email, "password": world.owner.password})
    request = api.build_request("POST", "/v1/auth/login", content=payload)
    request.headers.pop("Content-Type", None)
    response = await api.send(request)
    problem(response, 400, "BAD_REQUEST")
    assert "set-cookie" not in response.headers
    await assert_unchanged(db, redis, world, before)


async def test_create_api_key_refuses_a_non_json_body(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    owner_write: dict[str, str],
) -> None:
    response = await api.post(
        "/v1/api-keys",
        content=b'{"name": "ci"}',
        headers={**owner_write, "Content-Type": "text/plain"},
    )
    problem(response, 400, "BAD_REQUEST")
    await assert_unchanged(db, redis, world, before)


# --- REST: unknown fields and wrong types -------------------------------------------------------


async def test_login_refuses_unknown_fields(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, before: State
) -> None:
    response = await api.post(
        "/v1/auth/login",
        json={"email": world.owner.email, "password": world.owner.password, "rememberMe": True},
    )
    answer = problem(response, 400, "BAD_REQUEST")
    assert "rememberMe" in answer["detail"]
    assert "set-cookie" not in response.headers
    await assert_unchanged(db, redis, world, before)


async def test_create_api_key_refuses_unknown_fields(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    owner_write: dict[str, str],
) -> None:
    response = await api.post(
        "/v1/api-keys",
        json={"name": "ci", "accountId": str(world.other_account_id)},
        headers=owner_write,
    )
    answer = problem(response, 400, "BAD_REQUEST")
    assert "accountId" in answer["detail"]
    assert any(e["location"][-1] == "accountId" for e in answer["errors"])
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "body", [{"ttlSeconds": 60}, {"accountId": str(uuid.UUID(int=7))}, {"active": False}]
)
async def test_start_manual_connect_refuses_unknown_fields(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    body: dict[str, Any],
) -> None:
    # The endpoint takes no body; a client that believes it set a TTL (or another account)
    # must be told, not silently given the default on its own account.
    response = await api.post("/v1/spotify/manual-connect", json=body, headers=world.owner.bearer)
    problem(response, 400, "BAD_REQUEST")
    await assert_unchanged(db, redis, world, before)


async def test_switch_account_refuses_unknown_fields(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World
) -> None:
    await accounts.add_member(db, world.other_account_id, world.owner.email, RoleName.OWNER)
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    response = await api.put(
        "/v1/me/active-account",
        json={"accountId": str(world.other_account_id), "userId": str(uuid.uuid4())},
        headers=session.write,
    )
    answer = problem(response, 400, "BAD_REQUEST")
    assert "userId" in answer["detail"]
    await assert_unchanged(db, redis, world, before)
    me = await api.get("/v1/me", headers=session.cookie)
    assert me.json()["activeAccountId"] == str(world.account_id)


@pytest.mark.parametrize(
    "body",
    [
        {"accountId": "not-a-uuid"},
        {"accountId": 42},
        {"accountId": None},
        {"accountId": [str(uuid.UUID(int=1))]},
        {},
        [],
        "just a string",
    ],
)
async def test_switch_account_refuses_wrong_types(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, body: object
) -> None:
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    response = await api.put("/v1/me/active-account", json=body, headers=session.write)
    answer = problem(response, 400, "BAD_REQUEST")
    assert answer["errors"], answer
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "body", [{"name": 5}, {"name": ["a"]}, {"name": "x" * 201}, [], "name", None]
)
async def test_create_api_key_refuses_wrong_types(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    owner_write: dict[str, str],
    body: object,
) -> None:
    response = await api.post("/v1/api-keys", json=body, headers=owner_write)
    problem(response, 400, "BAD_REQUEST")
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "body",
    [
        {"email": 5, "password": "x"},
        {"email": "a@b.cd"},
        {"email": "a@b.cd", "password": ""},
        {"email": "a@b.cd", "password": "x" * 1025},
    ],
)
async def test_login_refuses_wrong_types(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    body: object,
) -> None:
    response = await api.post("/v1/auth/login", json=body)
    problem(response, 400, "BAD_REQUEST")
    assert "set-cookie" not in response.headers
    await assert_unchanged(db, redis, world, before)


async def test_revoke_api_key_refuses_a_non_uuid_id(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    owner_write: dict[str, str],
) -> None:
    response = await api.delete("/v1/api-keys/not-a-uuid", headers=owner_write)
    answer = problem(response, 400, "BAD_REQUEST")
    assert "key_id" in answer["detail"]
    await assert_unchanged(db, redis, world, before)


async def test_revoke_someone_elses_api_key_is_not_found(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    owner_write: dict[str, str],
) -> None:
    other_key_id = await db.fetchval(
        "SELECT id FROM api_keys WHERE user_id = $1", world.other_owner.user_id
    )
    response = await api.delete(f"/v1/api-keys/{other_key_id}", headers=owner_write)
    problem(response, 404, "NOT_FOUND")
    await assert_unchanged(db, redis, world, before)
    still = await api.get("/v1/channel-status", headers=world.other_owner.bearer)
    assert still.status_code == 200


# --- REST: methods and sizes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/spotify/manual-connect"),
        ("PATCH", "/v1/spotify/manual-connect"),
        ("POST", "/v1/channel-status"),
        ("DELETE", "/v1/channel-status"),
        ("GET", "/v1/auth/login"),
    ],
)
async def test_rest_method_not_allowed(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    method: str,
    path: str,
) -> None:
    response = await api.request(method, path, headers=world.owner.bearer)
    problem(response, 405, "METHOD_NOT_ALLOWED")
    await assert_unchanged(db, redis, world, before)


async def test_oversized_rest_body_is_413(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    world: World,
    before: State,
) -> None:
    body = orjson.dumps({"name": "k" * (settings.api.max_body_bytes + 1)})
    response = await api.post(
        "/v1/api-keys",
        content=body,
        headers={**world.owner.bearer, "Content-Type": "application/json"},
    )
    answer = problem(response, 413, "PAYLOAD_TOO_LARGE")
    assert str(settings.api.max_body_bytes) in answer["detail"]
    await assert_unchanged(db, redis, world, before)


async def test_oversized_chunked_body_is_413(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    world: World,
    before: State,
    owner_write: dict[str, str],
) -> None:
    # No Content-Length: the limit must count what arrives.
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(settings.api.max_body_bytes // 1024 + 2):
            yield b"k" * 1024
        yield b'"}'

    response = await api.post(
        "/v1/api-keys",
        content=chunks(),
        headers={**owner_write, "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    problem(response, 413, "PAYLOAD_TOO_LARGE")
    await assert_unchanged(db, redis, world, before)


async def test_oversized_graphql_body_is_413(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    world: World,
    before: State,
) -> None:
    # A valid mutation, padded with a comment: only its size is wrong.
    query = STOP + "\n#" + "x" * settings.api.max_body_bytes
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    problem(response, 413, "PAYLOAD_TOO_LARGE")
    await assert_unchanged(db, redis, world, before)


async def test_a_body_just_under_the_limit_is_served(
    api: httpx.AsyncClient, settings: Settings, world: World
) -> None:
    # The limit refuses only what is over it: the same padded query, small enough, runs.
    padding = settings.api.max_body_bytes - 200
    query = "{ spotifyManualStatus { active } }\n#" + "x" * padding
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"spotifyManualStatus": {"active": True}}}


# --- credentials --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNzd29yZA==", "Bearer", "Token lumio_abc", "lumio_abc", "Bearer\t"],
)
async def test_malformed_authorization_header_is_401(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    authorization: str,
) -> None:
    headers = {"Authorization": authorization}
    rest = await api.delete("/v1/spotify/manual-connect", headers=headers)
    answer = problem(rest, 401, "UNAUTHENTICATED")
    assert "Bearer <API key>" in answer["detail"]
    assert rest.headers["www-authenticate"].startswith("Bearer")
    gql = await api.post("/graphql", json={"query": STOP}, headers=headers)
    body = graphql_error(gql, 401, "UNAUTHENTICATED")
    assert "Bearer <API key>" in messages(body)
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "key", ["lumio_not-a-real-key", "x", "lumio_" + "A" * 43, "' OR 1=1 --", "ключ"]
)
async def test_unknown_bearer_key_is_401(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    key: str,
) -> None:
    headers = {b"Authorization": f"Bearer {key}".encode()}
    rest = await api.post("/v1/spotify/manual-connect", headers=headers)
    answer = problem(rest, 401, "UNAUTHENTICATED")
    assert answer["detail"] == "the API key is invalid or has been revoked"
    gql = await api.post("/graphql", json={"query": START}, headers=headers)
    graphql_error(gql, 401, "UNAUTHENTICATED")
    await assert_unchanged(db, redis, world, before)


async def test_bad_bearer_is_not_rescued_by_a_valid_cookie(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World
) -> None:
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    headers = {**session.write, "Authorization": "Bearer lumio_wrong"}
    response = await api.delete("/v1/spotify/manual-connect", headers=headers)
    problem(response, 401, "UNAUTHENTICATED")
    await assert_unchanged(db, redis, world, before)


async def test_revoked_key_is_401(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World
) -> None:
    owner_write = (await sign_in(api, world.owner)).write
    created = await api.post("/v1/api-keys", json={"name": "doomed"}, headers=owner_write)
    assert created.status_code == 201, created.text
    doomed = {"Authorization": f"Bearer {created.json()['key']}"}
    key_id = created.json()["apiKey"]["id"]
    # Used once, so that it sits in the credential cache when it is revoked.
    assert (await api.get("/v1/channel-status", headers=doomed)).status_code == 200

    revoked = await api.delete(f"/v1/api-keys/{key_id}", headers=owner_write)
    assert revoked.status_code == 204
    before = await snapshot(db, redis, world)

    rest = await api.delete("/v1/spotify/manual-connect", headers=doomed)
    answer = problem(rest, 401, "UNAUTHENTICATED")
    assert "revoked" in answer["detail"]
    gql = await api.post("/graphql", json={"query": STOP}, headers=doomed)
    graphql_error(gql, 401, "UNAUTHENTICATED")
    read = await api.get("/v1/channel-status", headers=doomed)
    problem(read, 401, "UNAUTHENTICATED")
    await assert_unchanged(db, redis, world, before)
    # The key that revoked it still works.
    assert (await api.get("/v1/channel-status", headers=world.owner.bearer)).status_code == 200


def tamper(token: str) -> str:
    last = token[-1]
    return token[:-1] + ("A" if last != "A" else "B")


@pytest.mark.parametrize(
    "forge",
    [tamper, lambda t: t[:-4], lambda t: t + "x", lambda t: "", lambda t: "lumio_" + t],
    ids=["one-char", "truncated", "extended", "empty", "prefixed"],
)
async def test_tampered_session_cookie_is_401(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, forge: Any
) -> None:
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    forged = Session(forge(session.token), session.csrf)
    # The real CSRF token, and the one that matches the forged cookie: neither helps.
    for csrf in (session.csrf, csrf_token_for(forged.token)):
        headers = {**forged.cookie, "X-CSRF-Token": csrf}
        rest = await api.delete("/v1/spotify/manual-connect", headers=headers)
        problem(rest, 401, "UNAUTHENTICATED")
        gql = await api.post("/graphql", json={"query": STOP}, headers=headers)
        graphql_error(gql, 401, "UNAUTHENTICATED")
    me = await api.get("/v1/me", headers=forged.cookie)
    problem(me, 401, "UNAUTHENTICATED")
    await assert_unchanged(db, redis, world, before)
    # The genuine cookie still works.
    assert (await api.get("/v1/me", headers=session.cookie)).status_code == 200


# --- GraphQL: the request object ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "mutation { stopSpotifyManual }"',
        b"{'query': 'mutation { stopSpotifyManual }'}",
        b"",
        b"mutation { stopSpotifyManual }",
        b"\xff\xfe\x00",
    ],
)
async def test_graphql_malformed_json_is_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    body: bytes,
) -> None:
    response = await api.post(
        "/graphql",
        content=body,
        headers={**world.owner.bearer, "Content-Type": "application/json"},
    )
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "JSON" in messages(answer)
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "body", [b"null", b"[]", b'"mutation { stopSpotifyManual }"', b"42", b'[{"query": "{a}"}]']
)
async def test_graphql_body_must_be_an_object(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    body: bytes,
) -> None:
    response = await api.post(
        "/graphql",
        content=body,
        headers={**world.owner.bearer, "Content-Type": "application/json"},
    )
    graphql_error(response, 400, "BAD_REQUEST")
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/graphql", None],
)
async def test_graphql_non_json_content_type_is_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    content_type: str | None,
) -> None:
    request = api.build_request(
        "POST",
        "/graphql",
        content=orjson.dumps({"query": STOP}),
        headers=world.owner.bearer,
    )
    if content_type is None:
        request.headers.pop("Content-Type", None)
    else:
        request.headers["Content-Type"] = content_type
    response = await api.send(request)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "application/json" in messages(answer)
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"mutation": STOP}, "mutation"),
        ({"variable": {}}, "variable"),
        ({"operation_name": None}, "operation_name"),
        ({"id": "persisted-1"}, "id"),
    ],
)
async def test_graphql_unknown_request_fields_are_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    extra: dict[str, Any],
    named: str,
) -> None:
    response = await api.post("/graphql", json={"query": STOP, **extra}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert named in messages(answer)
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"query": STOP, "variables": [1, 2]}, "variables"),
        ({"query": STOP, "variables": "{}"}, "variables"),
        ({"query": STOP, "variables": 1}, "variables"),
        ({"query": STOP, "operationName": 7}, "operationName"),
        ({"query": STOP, "operationName": ["a"]}, "operationName"),
        ({"query": None}, "query"),
        ({"query": 12}, "query"),
        ({"query": ""}, "query"),
        ({"query": "   \n"}, "query"),
        ({"variables": {}}, "query"),
        ({}, "query"),
    ],
)
async def test_graphql_wrong_request_types_are_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    fields: dict[str, Any],
    complaint: str,
) -> None:
    response = await api.post("/graphql", json=fields, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert complaint in messages(answer)
    await assert_unchanged(db, redis, world, before)


async def test_graphql_get_with_invalid_variables_is_400(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, before: State
) -> None:
    for variables in ("{not json", "[1]", '"s"'):
        response = await api.get(
            "/graphql",
            params={"query": "{ spotifyManualStatus { active } }", "variables": variables},
            headers=world.owner.bearer,
        )
        graphql_error(response, 400, "BAD_REQUEST")
    unknown = await api.get(
        "/graphql",
        params={"query": "{ spotifyManualStatus { active } }", "debug": "1"},
        headers=world.owner.bearer,
    )
    assert "debug" in messages(graphql_error(unknown, 400, "BAD_REQUEST"))
    await assert_unchanged(db, redis, world, before)


async def test_graphql_unknown_operation_name_is_400(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, before: State
) -> None:
    document = "query Read { spotifyManualStatus { active } } mutation Stop { stopSpotifyManual }"
    for operation in ("Start", None):
        payload: dict[str, Any] = {"query": document}
        if operation is not None:
            payload["operationName"] = operation
        response = await api.post("/graphql", json=payload, headers=world.owner.bearer)
        graphql_error(response, 400, "BAD_REQUEST")
    await assert_unchanged(db, redis, world, before)


# --- GraphQL: the document ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "mutation { stopSpotifyManual",
        "mutation { startSpotifyManual { active }",
        "mutation stopSpotifyManual }",
        "{ channelStatus { platform } } }",
        'mutation { stopSpotifyManual(x: "unterminated) }',
        "query { ... }",
    ],
)
async def test_graphql_syntax_error_is_400_with_a_location(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    query: str,
) -> None:
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "data" not in answer
    assert "Syntax Error" in messages(answer)
    assert answer["errors"][0]["locations"][0]["line"] >= 1
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("mutation { stopSpotifyManual deleteAccount }", "deleteAccount"),
        ("mutation { startSpotifyManual { active owner } }", "owner"),
        ("{ channelStatus { platform accountId } }", "accountId"),
        ('{ channelStatus(accountId: "x") { platform } }', "accountId"),
        ("mutation { startSpotifyManual(ttl: 99999) { active } }", "ttl"),
        ("mutation { stopSpotifyManual { active } }", "stopSpotifyManual"),
        ("subscription { channelStatus { platform } }", "ubscription"),
    ],
)
async def test_graphql_unknown_fields_are_400_and_nothing_runs(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    before: State,
    query: str,
    named: str,
) -> None:
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "data" not in answer
    assert named in messages(answer)
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "variables",
    [{}, {"id": None}, {"id": {"a": 1}}, {"id": [1]}, {"id": 1.5}, {"id": True}],
    ids=["missing", "null", "object", "list", "float", "boolean"],
)
async def test_graphql_variables_of_the_wrong_type_are_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    world: World,
    variables: dict[str, Any],
) -> None:
    # Variable coercion fails before anything runs: a request error (400, BAD_REQUEST) that
    # says which variable is wrong, not an internal error.
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    response = await api.post(
        "/graphql",
        json={
            "query": "mutation ($id: ID!) { switchAccount(accountId: $id) { id } }",
            "variables": variables,
        },
        headers=session.write,
    )
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "data" not in answer
    assert "$id" in messages(answer)
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize(
    "account_id", ["not-a-uuid", "", "1", "00000000-0000-0000-0000-00000000000g", "' OR 1=1"]
)
async def test_graphql_switch_account_refuses_an_id_that_is_not_a_uuid(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, account_id: str
) -> None:
    await accounts.add_member(db, world.other_account_id, world.owner.email, RoleName.OWNER)
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    response = await api.post(
        "/graphql",
        json={
            "query": "mutation ($id: ID!) { switchAccount(accountId: $id) { id active } }",
            "variables": {"id": account_id},
        },
        headers=session.write,
    )
    # The request is well formed; the resolver refuses the value (GraphQL-over-HTTP answers
    # execution errors with 200 and data null).
    assert response.status_code in (200, 400), response.text
    body = graphql_error(response, response.status_code, "BAD_REQUEST")
    assert body.get("data") is None
    assert "accountId" in messages(body)
    await assert_unchanged(db, redis, world, before)


async def test_graphql_mutation_over_get_is_405(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World
) -> None:
    session = await sign_in(api, world.owner)
    before = await snapshot(db, redis, world)
    for query in (START, STOP, "mutation Named { stopSpotifyManual }"):
        response = await api.get("/graphql", params={"query": query}, headers=world.owner.bearer)
        answer = graphql_error(response, 405, "METHOD_NOT_ALLOWED")
        assert "POST" in messages(answer)
    # With a session cookie too (GET needs no CSRF token, so the method check must hold).
    response = await api.get("/graphql", params={"query": STOP}, headers=session.cookie)
    graphql_error(response, 405, "METHOD_NOT_ALLOWED")
    await assert_unchanged(db, redis, world, before)


async def test_graphql_query_over_get_is_served(api: httpx.AsyncClient, world: World) -> None:
    response = await api.get(
        "/graphql",
        params={"query": "{ channelStatus { platform isOnline } }"},
        headers=world.owner.bearer,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": {"channelStatus": [{"platform": "twitch", "isOnline": True}]}
    }


def nested(levels: int, leaf: str = "name") -> str:
    """``ofType { ofType { ... { name } } }``, ``levels`` deep."""
    return "ofType { " * levels + leaf + " }" * levels


async def test_graphql_over_deep_query_is_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    world: World,
    before: State,
) -> None:
    # The application's own types are shallow; a deep selection through them is refused for
    # its depth as well as for its unknown fields.
    depth = settings.api.graphql_max_depth + 5
    query = "mutation { startSpotifyManual { " + "a { " * depth + "b" + " }" * depth + " } }"
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert f"exceeds maximum operation depth of {settings.api.graphql_max_depth}" in messages(
        answer
    )
    await assert_unchanged(db, redis, world, before)


@pytest.mark.parametrize("levels", [20, 60])
async def test_graphql_over_deep_introspection_query_is_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    world: World,
    before: State,
    levels: int,
) -> None:
    # Introspection types nest without end (__Type.ofType): the depth limit must cover them
    # too (DESIGN §7: "for every query, introspection included").
    query = "{ __schema { types { fields { type { " + nested(levels) + " } } } } }"
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "exceeds maximum operation depth" in messages(answer)
    await assert_unchanged(db, redis, world, before)


async def test_graphql_over_deep_type_introspection_is_400(
    api: httpx.AsyncClient, world: World
) -> None:
    query = '{ __type(name: "Query") { fields { type { ' + nested(60) + " } } } }"
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert "exceeds maximum operation depth" in messages(answer)


async def test_standard_introspection_query_is_accepted(
    api: httpx.AsyncClient, world: World
) -> None:
    # What GraphiQL and client generators send.
    query = get_introspection_query(descriptions=True)
    response = await api.post(
        "/graphql",
        json={"query": query, "operationName": "IntrospectionQuery"},
        headers=world.owner.bearer,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    schema = body["data"]["__schema"]
    assert schema["queryType"]["name"] == "Query"
    assert schema["mutationType"]["name"] == "Mutation"
    types = {t["name"] for t in schema["types"]}
    assert {"ChannelStatus", "SpotifyManualStatus"} <= types
    # Over GET as well (a client generator may use either).
    response = await api.get("/graphql", params={"query": query}, headers=world.owner.bearer)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()


async def test_graphql_query_over_the_token_limit_is_400(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    redis: Redis,
    settings: Settings,
    world: World,
    before: State,
) -> None:
    aliases = " ".join(
        # Six tokens each: a0 : startSpotifyManual { active }
        f"a{i}: startSpotifyManual {{ active }}"
        for i in range(settings.api.graphql_max_tokens // 5)
    )
    query = "mutation { " + aliases + " }"
    assert len(query) < settings.api.max_body_bytes  # refused for its tokens, not its bytes
    response = await api.post("/graphql", json={"query": query}, headers=world.owner.bearer)
    answer = graphql_error(response, 400, "BAD_REQUEST")
    assert f"more than {settings.api.graphql_max_tokens} tokens" in messages(answer)
    await assert_unchanged(db, redis, world, before)


async def test_graphql_unauthenticated_is_401_and_nothing_runs(
    api: httpx.AsyncClient, db: asyncpg.Pool, redis: Redis, world: World, before: State
) -> None:
    response = await api.post("/graphql", json={"query": STOP})
    graphql_error(response, 401, "UNAUTHENTICATED")
    rest = await api.delete("/v1/spotify/manual-connect")
    problem(rest, 401, "UNAUTHENTICATED")
    await assert_unchanged(db, redis, world, before)


async def test_bad_requests_leave_the_good_path_working(
    api: httpx.AsyncClient, redis: Redis, world: World
) -> None:
    # After all of the above kinds of refusal, the same credentials still do what they may.
    await api.post(
        "/graphql", content=b"{", headers={**world.owner.bearer, "Content-Type": "application/json"}
    )
    stopped = await api.post("/graphql", json={"query": STOP}, headers=world.owner.bearer)
    assert stopped.json() == {"data": {"stopSpotifyManual": True}}
    assert await redis.exists(manual_key(world.account_id)) == 0
    # The other account's key was never touched.
    assert await redis.get(manual_key(world.other_account_id)) == SENTINEL.encode()
