"""Every input gets a 4xx (issue 10, items 4-6): text PostgreSQL refuses is a 400 everywhere,
a bug is a bare 500 problem without details, 405 says Allow, secrets are never cached, and
GraphQL caps root fields."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from lumio.api.app import create_app
from lumio.kit.settings import Settings
from tests.auth.test_sessions import problem, sign_in
from tests.conftest import Factory

NUL_EMAIL = b'{"email": "a\\u0000@b.c", "password": "whatever"}'
JSON = {"Content-Type": "application/json"}


async def test_nul_in_a_login_email_is_400(api: httpx.AsyncClient) -> None:
    answer = await api.post("/v1/auth/login", content=NUL_EMAIL, headers=JSON)
    assert "NUL" in problem(answer, 400, "BAD_REQUEST")["detail"]


@pytest.mark.parametrize("name", ["a\\u0000b", "a\\ud800b"])
async def test_nul_or_a_lone_surrogate_in_a_key_name_is_400(
    api: httpx.AsyncClient, db: asyncpg.Pool, factory: Factory, name: str
) -> None:
    _, owner = await factory.account()
    session = await sign_in(api, owner.email, owner.password)
    before = await db.fetchval("SELECT count(*) FROM api_keys")
    body = b'{"name": "' + name.encode() + b'"}'
    answer = await api.post("/v1/api-keys", content=body, headers={**session.write, **JSON})
    problem(answer, 400, "BAD_REQUEST")
    assert await db.fetchval("SELECT count(*) FROM api_keys") == before


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/spotify/callback?code=a%00b&state=s"),
        ("DELETE", "/v1/channels/tw%00itch"),
        ("GET", "/v1/api-keys?after=%00"),
        ("GET", "/graphql?query=%7B__typename%7D&operationName=a%00"),
    ],
)
async def test_nul_in_a_query_or_path_is_400(
    api: httpx.AsyncClient, factory: Factory, method: str, url: str
) -> None:
    _, owner = await factory.account()
    answer = await api.request(method, url, headers=owner.bearer)
    problem(answer, 400, "BAD_REQUEST")


async def test_nul_in_graphql_variables_and_literals_is_400(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    link = 'mutation ($c: String!) { linkChannel(platform: "kick", channel: $c) { platform } }'
    payload = {"query": link, "variables": {"c": "a\x00b"}}
    answer = await api.post("/graphql", json=payload, headers=owner.bearer)
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    # A GraphQL string literal with the escape \u0000 in the query text.
    literal = 'mutation { linkChannel(platform: "kick", channel: "a\\u0000b") { platform } }'
    answer = await api.post("/graphql", json={"query": literal}, headers=owner.bearer)
    assert answer.status_code == 400, answer.text
    assert "NUL" in answer.json()["errors"][0]["message"]


async def test_graphql_root_fields_are_capped(api: httpx.AsyncClient, factory: Factory) -> None:
    _, owner = await factory.account()

    def aliases(n: int) -> str:
        return "{ " + " ".join(f"a{i}: channelStatus {{ platform }}" for i in range(n)) + " }"

    assert (
        await api.post("/graphql", json={"query": aliases(20)}, headers=owner.bearer)
    ).status_code == 200
    refused = await api.post("/graphql", json={"query": aliases(330)}, headers=owner.bearer)
    assert refused.status_code == 400
    assert "root fields" in refused.json()["errors"][0]["message"]
    through_fragment = "query { ...F } fragment F on Query { " + aliases(21)[2:-2] + " }"
    refused = await api.post("/graphql", json={"query": through_fragment}, headers=owner.bearer)
    assert refused.status_code == 400


@pytest.fixture
async def buggy_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)

    async def boom(_: Request) -> Response:
        raise RuntimeError("secret internals: password=hunter2")

    application.add_route("/boom", boom, ["GET"])
    async with application.router.lifespan_context(application):
        yield application


async def test_an_unexpected_error_is_a_500_problem_without_details(buggy_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=buggy_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as client:
        answer = await client.get("/boom")
    body = problem(answer, 500, "INTERNAL")
    assert "hunter2" not in answer.text
    assert "RuntimeError" not in answer.text
    assert body["detail"] == "an unexpected error occurred"


async def test_405_says_allow(api: httpx.AsyncClient) -> None:
    answer = await api.put("/v1/me")
    problem(answer, 405, "METHOD_NOT_ALLOWED")
    assert answer.headers["allow"] == "GET"


async def test_answers_with_secrets_are_not_stored(
    api: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    login = await api.post(
        "/v1/auth/login", json={"email": owner.email, "password": owner.password}
    )
    assert login.headers["cache-control"] == "no-store"
    session = await sign_in(api, owner.email, owner.password)
    created = await api.post("/v1/api-keys", json={}, headers=session.write)
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    me = await api.get("/v1/me", headers=session.cookie)
    assert me.headers["cache-control"] == "no-store"
    # The dashboard's hashed assets keep their own caching.
    page = await api.get("/")
    asset = next(p for p in page.text.split('"') if p.startswith("/assets/"))
    assert "immutable" in (await api.get(asset)).headers["cache-control"]


async def test_too_many_or_too_large_headers_are_431(api: httpx.AsyncClient) -> None:
    many = {f"x-h{i}": "1" for i in range(120)}
    problem(await api.get("/healthz", headers=many), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    big = {"x-big": "a" * 20_000}
    problem(await api.get("/healthz", headers=big), 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
