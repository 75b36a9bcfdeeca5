"""The hot routes (lumio.api.hot) answer as the full FastAPI stack would (issue 15): same bodies
and headers, the same request checks, error problems and 405s, without walking the stack."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from lumio.api.app import create_app
from lumio.api.hot import LumioAPI
from lumio.channel_status import service
from lumio.kit.settings import Settings
from tests.auth.test_sessions import problem
from tests.conftest import Factory, asgi_client

STATUS_QUERY = {"query": "{ channelStatus { platform isOnline streamTitle viewerCount } }"}


@pytest.fixture
async def own_app(settings: Settings) -> AsyncIterator[LumioAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(own_app: LumioAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(own_app) as client:
        yield client


async def _both_ways(
    app: LumioAPI, client: httpx.AsyncClient, method: str, url: str, **kwargs: object
) -> tuple[httpx.Response, httpx.Response]:
    hot = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    routes, app.hot_routes = app.hot_routes, None
    try:
        full = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    finally:
        app.hot_routes = routes
    return hot, full


def _same(hot: httpx.Response, full: httpx.Response) -> None:
    assert (hot.status_code, hot.content) == (full.status_code, full.content)
    for name in ("content-type", "cache-control", "www-authenticate"):
        assert hot.headers.get(name) == full.headers.get(name), name


@pytest.mark.parametrize("credentials", [True, False])
async def test_answers_are_the_full_stacks(
    own_app: LumioAPI, client: httpx.AsyncClient, factory: Factory, credentials: bool
) -> None:
    _, owner = await factory.account()
    headers = owner.bearer if credentials else {}
    for method, url, extra in (
        ("GET", "/v1/channel-status", {}),
        ("POST", "/graphql", {"json": STATUS_QUERY}),
        ("GET", "/graphql?query=%7BchannelStatus%7Bplatform%7D%7D", {}),
    ):
        hot, full = await _both_ways(own_app, client, method, url, headers=headers, **extra)
        _same(hot, full)
        assert hot.status_code == (200 if credentials else 401)
        assert hot.headers["cache-control"] == "no-store"


async def test_hot_routes_do_not_walk_the_stack(
    own_app: LumioAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    await client.get("/v1/me", headers=owner.bearer)  # builds the stack

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError(f"{scope['path']} went through the stack")

    own_app.middleware_stack = broken
    assert (await client.get("/v1/channel-status", headers=owner.bearer)).status_code == 200
    assert (await client.post("/graphql", json=STATUS_QUERY, headers=owner.bearer)).is_success
    with pytest.raises(AssertionError, match="went through the stack"):
        await client.put("/v1/channel-status", headers=owner.bearer)


@pytest.mark.parametrize(
    ("method", "url", "extra", "status", "code"),
    [
        ("GET", "/v1/channel-status?x=%00", {}, 400, "BAD_REQUEST"),
        ("GET", "/v1/channel-status", {"headers": {"x-a": "\x00"}}, 400, "BAD_REQUEST"),
        ("POST", "/graphql", {"content": b"{}" * 40_000}, 413, "PAYLOAD_TOO_LARGE"),
        ("PUT", "/v1/channel-status", {}, 405, "METHOD_NOT_ALLOWED"),
    ],
)
async def test_refusals_are_the_full_stacks(
    own_app: LumioAPI,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    extra: dict[str, object],
    status: int,
    code: str,
) -> None:
    hot, full = await _both_ways(own_app, client, method, url, **extra)
    problem(hot, status, code)
    _same(hot, full)


async def test_too_many_headers_is_431(client: httpx.AsyncClient) -> None:
    headers = {f"x-h{i}": "1" for i in range(120)}
    answer = await client.get("/v1/channel-status", headers=headers)
    problem(answer, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")


async def test_a_database_outage_is_503_and_a_bug_a_bare_500(
    own_app: LumioAPI, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, owner = await factory.account()

    async def down(*_: object) -> None:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(service, "read_channel_status", down)
    async with asgi_client(own_app, raise_app_exceptions=False) as client:
        hot, full = await _both_ways(
            own_app, client, "GET", "/v1/channel-status", headers=owner.bearer
        )
        problem(hot, 503, "UNAVAILABLE")
        _same(hot, full)

        async def bug(*_: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(service, "read_channel_status", bug)
        hot, full = await _both_ways(
            own_app, client, "GET", "/v1/channel-status", headers=owner.bearer
        )
    problem(hot, 500, "INTERNAL")
    _same(hot, full)
    assert "secret" not in hot.text
    # As Starlette's ServerErrorMiddleware does: answered, then raised for the server's log.
    async with asgi_client(own_app) as client:
        with pytest.raises(RuntimeError, match="secret internals"):
            await client.get("/v1/channel-status", headers=owner.bearer)
