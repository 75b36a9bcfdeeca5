"""Linking Spotify over REST and GraphQL: the OAuth state bound to the session, who may do what,
unlinking, and Redis or the configuration missing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from lumio.api.app import create_app
from lumio.dev.fakes.server import free_port
from lumio.dev.fakes.spotify import FakeSpotifyState
from lumio.embedded import EmbeddedRedis
from lumio.kit.errors import Unavailable
from lumio.kit.permissions import RoleName
from lumio.kit.settings import DatabaseSettings, Settings, SpotifySettings
from lumio.manual_connect.service import manual_key
from lumio.spotify.linking.crypto import LOCAL_KEY_FILE, cipher_for, key_for, token_context
from lumio.spotify.poller.run import worker_settings
from tests.conftest import PASSWORD, Factory, Member
from tests.spotify.conftest import consent, link_account

PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


async def session(api: httpx.AsyncClient, member: Member) -> dict[str, str]:
    """Headers of a fresh browser session of ``member`` (cookie and CSRF token)."""
    answer = await api.post("/v1/auth/login", json={"email": member.email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    token = answer.cookies["lumio_session"]
    api.cookies.clear()
    return {"Cookie": f"lumio_session={token}", "X-CSRF-Token": answer.json()["csrfToken"]}


async def test_the_authorize_url_asks_for_the_two_scopes_with_a_state(
    spotify_api: httpx.AsyncClient, factory: Factory, spotify_settings: Settings
) -> None:
    _, owner = await factory.account()
    answer = await spotify_api.post("/v1/spotify/connection/authorize", headers=owner.bearer)
    assert answer.status_code == 200
    url = urlsplit(answer.json()["authorizeUrl"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}" == spotify_settings.spotify.accounts_base
    assert url.path == "/authorize"
    assert query["client_id"] == spotify_settings.spotify.client_id
    assert query["response_type"] == "code"
    assert query["scope"] == "user-read-currently-playing user-read-playback-state"
    assert query["redirect_uri"] == "http://lumio.test/v1/spotify/callback"
    assert len(query["state"]) >= 40
    assert answer.json()["expiresAt"]


async def test_the_state_is_bound_to_the_session_that_started_and_used_once(
    spotify_api: httpx.AsyncClient, fake: FakeSpotifyState, factory: Factory
) -> None:
    account_id, owner = await factory.account()
    fake.add_user("streamer")
    mine, other = await session(spotify_api, owner), await session(spotify_api, owner)
    started = await spotify_api.post("/v1/spotify/connection/authorize", headers=mine)
    params = await consent(started.json()["authorizeUrl"])
    # The same user in another session (or anyone the callback was forged onto) links nothing.
    forged = await spotify_api.get("/v1/spotify/callback", params=params, headers=other)
    problem(forged, 403, "FORBIDDEN")
    # The state was spent by that attempt.
    replay = await spotify_api.get("/v1/spotify/callback", params=params, headers=mine)
    problem(replay, 400, "BAD_REQUEST")
    assert (await spotify_api.get("/v1/spotify/connection", headers=mine)).json() is None

    started = await spotify_api.post("/v1/spotify/connection/authorize", headers=mine)
    params = await consent(started.json()["authorizeUrl"])
    done = await spotify_api.get("/v1/spotify/callback", params=params, headers=mine)
    assert done.status_code == 200, done.text
    assert done.json()["spotifyUserId"] == "streamer" and done.json()["status"] == "active"
    problem(
        await spotify_api.get("/v1/spotify/callback", params=params, headers=mine),
        400,
        "BAD_REQUEST",
    )
    # Without the CSRF token a cookie cannot start a link.
    no_csrf = {"Cookie": mine["Cookie"]}
    problem(
        await spotify_api.post("/v1/spotify/connection/authorize", headers=no_csrf),
        403,
        "FORBIDDEN",
    )
    assert account_id


async def test_a_denied_consent_or_a_bad_code_links_nothing(
    spotify_api: httpx.AsyncClient, fake: FakeSpotifyState, factory: Factory
) -> None:
    _, owner = await factory.account()
    fake.add_user("streamer")
    fake.deny_consent = True
    started = await spotify_api.post("/v1/spotify/connection/authorize", headers=owner.bearer)
    params = await consent(started.json()["authorizeUrl"])
    assert params["error"] == "access_denied"
    denied = await spotify_api.get("/v1/spotify/callback", params=params, headers=owner.bearer)
    assert "access_denied" in problem(denied, 400, "BAD_REQUEST")["detail"]

    fake.deny_consent = False
    started = await spotify_api.post("/v1/spotify/connection/authorize", headers=owner.bearer)
    params = await consent(started.json()["authorizeUrl"])
    params["code"] = "not-a-code"
    bad = await spotify_api.get("/v1/spotify/callback", params=params, headers=owner.bearer)
    assert "Invalid authorization code" in problem(bad, 400, "BAD_REQUEST")["detail"]
    assert (await spotify_api.get("/v1/spotify/connection", headers=owner.bearer)).json() is None


async def graphql(api: httpx.AsyncClient, query: str, member: Member, **variables: str) -> Any:
    answer = await api.post(
        "/graphql", json={"query": query, "variables": variables}, headers=member.bearer
    )
    return answer.json()


async def test_link_and_unlink_over_graphql(
    spotify_api: httpx.AsyncClient, fake: FakeSpotifyState, factory: Factory, redis: Redis
) -> None:
    account_id, owner = await factory.account()
    fake.add_user("dj", display_name="DJ Lumio")
    await redis.set(manual_key(account_id), "on", ex=60)
    started = await graphql(spotify_api, "mutation { linkSpotify { authorizeUrl } }", owner)
    params = await consent(started["data"]["linkSpotify"]["authorizeUrl"])
    complete = (
        "mutation ($code: String!, $state: String!) {"
        " completeSpotifyLink(code: $code, state: $state) { spotifyUserId displayName status polling } }"
    )
    done = await graphql(spotify_api, complete, owner, code=params["code"], state=params["state"])
    # Manual connect was on: the link is polled at once.
    assert done["data"]["completeSpotifyLink"] == {
        "spotifyUserId": "dj",
        "displayName": "DJ Lumio",
        "status": "active",
        "polling": True,
    }
    assert (await graphql(spotify_api, "mutation { unlinkSpotify }", owner)) == {
        "data": {"unlinkSpotify": True}
    }
    gone = await graphql(spotify_api, "{ spotifyConnection { status } }", owner)
    assert gone == {"data": {"spotifyConnection": None}}
    again = await graphql(spotify_api, "mutation { unlinkSpotify }", owner)
    assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    rest = await spotify_api.delete("/v1/spotify/connection", headers=owner.bearer)
    problem(rest, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("role", "can_read", "can_link"),
    [
        (RoleName.ADMINISTRATOR, True, True),
        (RoleName.MODERATOR, True, False),
        (RoleName.VIEWER, False, False),
    ],
)
async def test_spotify_read_to_read_and_spotify_worker_to_link(
    spotify_api: httpx.AsyncClient,
    fake: FakeSpotifyState,
    factory: Factory,
    role: RoleName,
    can_read: bool,
    can_link: bool,
) -> None:
    linked = await link_account(spotify_api, fake, factory)
    member = await factory.member(linked.account_id, role)
    reads = [
        await spotify_api.get(path, headers=member.bearer)
        for path in ("/v1/spotify/connection", "/v1/spotify/now-playing", "/v1/spotify/history")
    ]
    assert [r.status_code for r in reads] == [200 if can_read else 403] * 3
    query = "{ spotifyConnection { status } spotifyNowPlaying { title } spotifyHistory { title } }"
    answer = await graphql(spotify_api, query, member)
    if can_read:
        assert answer["data"]["spotifyConnection"] == {"status": "active"}
    else:
        assert {e["extensions"]["code"] for e in answer["errors"]} == {"FORBIDDEN"}
    start = await spotify_api.post("/v1/spotify/connection/authorize", headers=member.bearer)
    unlink = await graphql(spotify_api, "mutation { unlinkSpotify }", member)
    assert (start.status_code == 200) is can_link
    assert ("errors" not in unlink) is can_link
    unauthenticated = await spotify_api.get("/v1/spotify/now-playing")
    problem(unauthenticated, 401, "UNAUTHENTICATED")


async def test_another_account_s_link_is_invisible(
    spotify_api: httpx.AsyncClient, fake: FakeSpotifyState, factory: Factory
) -> None:
    await link_account(spotify_api, fake, factory)
    _, stranger = await factory.account()
    assert (await spotify_api.get("/v1/spotify/connection", headers=stranger.bearer)).json() is None
    assert (
        await spotify_api.get("/v1/spotify/now-playing", headers=stranger.bearer)
    ).json() is None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fragile_api(
    spotify_settings: Settings, own_redis: EmbeddedRedis
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(spotify_settings.updated({"redis": {"url": own_redis.url}}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as c:
            yield c


async def test_with_redis_down_now_playing_and_linking_answer_503(
    fragile_api: httpx.AsyncClient,
    own_redis: EmbeddedRedis,
    fake: FakeSpotifyState,
    factory: Factory,
) -> None:
    linked = await link_account(fragile_api, fake, factory)
    assert (
        await fragile_api.get("/v1/spotify/now-playing", headers=linked.owner.bearer)
    ).json() is None
    own_redis.stop()
    for method, path in (
        ("GET", "/v1/spotify/now-playing"),
        ("POST", "/v1/spotify/connection/authorize"),
    ):
        down = await fragile_api.request(method, path, headers=linked.owner.bearer)
        assert "Redis" in problem(down, 503, "UNAVAILABLE")["detail"]
    gql = await graphql(fragile_api, "{ spotifyNowPlaying { title } }", linked.owner)
    assert [e["extensions"]["code"] for e in gql["errors"]] == ["UNAVAILABLE"]
    # The link itself lives in PostgreSQL.
    shown = await fragile_api.get("/v1/spotify/connection", headers=linked.owner.bearer)
    assert shown.status_code == 200 and shown.json()["status"] == "active"


@pytest.fixture
async def unconfigured_api(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.updated({"data_dir": tmp_path}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as c:
            yield c


async def test_without_credentials_or_a_token_key_linking_answers_503(
    unconfigured_api: httpx.AsyncClient, factory: Factory
) -> None:
    _, owner = await factory.account()
    down = await unconfigured_api.post("/v1/spotify/connection/authorize", headers=owner.bearer)
    assert "LUMIO_SPOTIFY_CLIENT_ID" in problem(down, 503, "UNAVAILABLE")["detail"]
    assert (
        await unconfigured_api.get("/v1/spotify/connection", headers=owner.bearer)
    ).json() is None


def test_the_worker_refuses_to_start_without_credentials_or_a_key(tmp_path: Path) -> None:
    configured = Settings(
        db=DatabaseSettings(url="postgresql://db.example/lumio"),
        spotify=SpotifySettings(client_id="id", client_secret="secret"),
        data_dir=tmp_path,
    )
    with pytest.raises(Unavailable, match="LUMIO_SPOTIFY_TOKEN_KEY"):
        worker_settings(configured, configured)
    assert not (tmp_path / LOCAL_KEY_FILE).exists()
    no_app = configured.updated({"spotify": {"client_id": ""}})
    with pytest.raises(Unavailable, match="LUMIO_SPOTIFY_CLIENT_ID"):
        worker_settings(no_app, no_app)


def test_on_embedded_servers_the_worker_generates_one_key_and_keeps_it(tmp_path: Path) -> None:
    configured = Settings(
        db=DatabaseSettings(url=None),
        spotify=SpotifySettings(client_id="id", client_secret="s"),
        data_dir=tmp_path,
    )
    resolved = configured.updated({"db": {"url": "postgresql://embedded/lumio"}})
    first, second = worker_settings(configured, resolved), worker_settings(configured, resolved)
    key_file = tmp_path / LOCAL_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    context = token_context(uuid4(), "access")
    assert cipher_for(second).decrypt(cipher_for(first).encrypt("t", context), context) == "t"
    # The API of the same installation finds it too.
    assert key_for(resolved) == key_file.read_text().strip()


@pytest.fixture
async def returning_api(spotify_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    back = {"link_return_url": "https://lumio.example/settings?tab=spotify"}
    app: FastAPI = create_app(spotify_settings.updated({"spotify": back}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lumio.test") as c:
            yield c


async def test_with_a_return_url_the_browser_is_sent_back_to_the_dashboard(
    returning_api: httpx.AsyncClient, fake: FakeSpotifyState, factory: Factory
) -> None:
    _, owner = await factory.account()
    fake.add_user("streamer")
    started = await returning_api.post("/v1/spotify/connection/authorize", headers=owner.bearer)
    params = await consent(started.json()["authorizeUrl"])
    done = await returning_api.get("/v1/spotify/callback", params=params, headers=owner.bearer)
    assert done.status_code == 303
    assert done.headers["location"] == "https://lumio.example/settings?tab=spotify&spotify=linked"
    again = await returning_api.get("/v1/spotify/callback", params=params, headers=owner.bearer)
    assert again.headers["location"].endswith("&spotify=error&code=BAD_REQUEST")
