"""The fake Spotify is strict where Spotify is (PLATFORM_APIS.md §5, §6), over loopback HTTP."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lumio.dev.fakes.spotify import FakeSpotifyState, FakeTrack
from tests.spotify.conftest import SpotifyClock

REDIRECT = "http://127.0.0.1:9/callback"


@pytest.fixture
async def http(
    fake: FakeSpotifyState, fake_server: tuple[FakeSpotifyState, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_server[1]) as client:
        yield client


def basic(fake: FakeSpotifyState, secret: str | None = None) -> dict[str, str]:
    pair = f"{fake.client_id}:{secret or fake.client_secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def token(http: httpx.AsyncClient, fake: FakeSpotifyState, **form: str) -> httpx.Response:
    return await http.post("/api/token", data=form, headers=basic(fake))


async def grant(http: httpx.AsyncClient, fake: FakeSpotifyState, user: str) -> dict[str, Any]:
    code = fake.issue_code(user, REDIRECT, "user-read-currently-playing")
    answer = await token(
        http, fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def test_codes_refresh_tokens_and_their_errors(
    http: httpx.AsyncClient, fake: FakeSpotifyState
) -> None:
    fake.add_user("u1")
    first = await grant(http, fake, "u1")
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3600
    assert first["refresh_token"] and first["scope"] == "user-read-currently-playing"
    # Spotify often omits refresh_token on a refresh: keep the old one.
    refreshed = await token(
        http, fake, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert refreshed.status_code == 200 and "refresh_token" not in refreshed.json()

    wrong_client = await http.post(
        "/api/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=basic(fake, "wrong"),
    )
    assert wrong_client.status_code == 400 and wrong_client.json()["error"] == "invalid_client"
    code = fake.issue_code("u1", REDIRECT, "user-read-currently-playing")
    other_uri = await token(
        http, fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT + "x"
    )
    assert other_uri.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid redirect URI",
    }
    used = await token(
        http, fake, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
    )
    assert used.json()["error_description"] == "Invalid authorization code"

    fake.revoke("u1")
    revoked = await token(
        http, fake, grant_type="refresh_token", refresh_token=first["refresh_token"]
    )
    assert revoked.status_code == 400
    assert revoked.json() == {
        "error": "invalid_grant",
        "error_description": "Refresh token revoked",
    }
    unknown = await token(http, fake, grant_type="refresh_token", refresh_token="nope")
    assert unknown.json()["error_description"] == "Invalid refresh token"


async def test_currently_playing_answers_200_204_401_403_and_429(
    http: httpx.AsyncClient, fake: FakeSpotifyState
) -> None:
    fake.add_user("u1", tracks=[FakeTrack("t1", "Song", ("Band",), "Album", 60_000)])
    access = (await grant(http, fake, "u1"))["access_token"]
    path = "/v1/me/player/currently-playing"
    playing = await http.get(path, headers=bearer(access))
    body = playing.json()
    assert body["currently_playing_type"] == "track" and body["is_playing"] is True
    assert body["item"]["name"] == "Song" and body["item"]["album"]["images"]

    fake.act("u1", "stop")
    nothing = await http.get(path, headers=bearer(access))
    assert nothing.status_code == 204 and nothing.content == b""
    fake.act("u1", "play")
    fake.act("u1", "private")
    assert (await http.get(path, headers=bearer(access))).status_code == 204
    fake.act("u1", "public")
    fake.act("u1", "ad")
    ad = (await http.get(path, headers=bearer(access))).json()
    assert (ad["currently_playing_type"], ad["item"]) == ("ad", None)
    fake.act("u1", "episode")
    # Episodes only with additional_types=episode; without, the item is null.
    assert (await http.get(path, headers=bearer(access))).json()["item"] is None
    with_episodes = await http.get(
        path, params={"additional_types": "track,episode"}, headers=bearer(access)
    )
    assert with_episodes.json()["item"]["type"] == "episode"

    fake.retry_after = 7
    fake.fail_next(1, "429", path)
    limited = await http.get(path, headers=bearer(access))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    fake.quota_exceeded_next = 1
    quota = await http.get(path, headers=bearer(access))
    assert quota.json()["error"]["reason"] == "QUOTA_EXCEEDED"

    fake.expire_tokens("u1")
    expired = await http.get(path, headers=bearer(access))
    assert expired.status_code == 401
    assert expired.json() == {"error": {"status": 401, "message": "The access token expired"}}
    no_scope = fake.issue_code("u1", REDIRECT, "user-read-email")
    answer = await token(
        http, fake, grant_type="authorization_code", code=no_scope, redirect_uri=REDIRECT
    )
    denied = await http.get(path, headers=bearer(answer.json()["access_token"]))
    assert denied.status_code == 403


async def test_tracks_play_on_the_fake_s_clock(
    fake: FakeSpotifyState, spotify_clock: SpotifyClock
) -> None:
    spotify_clock.freeze()
    tracks = [FakeTrack("a", "A", ("X",), "Y", 10_000), FakeTrack("b", "B", ("X",), "Y", 10_000)]
    fake.add_user("u1", tracks=tracks)
    spotify_clock.advance(4)
    assert round(fake.user("u1").position_ms) == 4_000
    spotify_clock.advance(7)
    now = fake.user("u1")
    assert (now.index, round(now.position_ms)) == (1, 1_000)
    fake.act("u1", "pause")
    spotify_clock.advance(60)
    assert (fake.user("u1").index, round(fake.user("u1").position_ms)) == (1, 1_000)


async def test_the_control_interface(http: httpx.AsyncClient, fake: FakeSpotifyState) -> None:
    created = await http.post("/_control/users", json={"user_id": "dj", "display_name": "DJ"})
    assert created.status_code == 201 and created.json()["display_name"] == "DJ"
    paused = await http.patch("/_control/users/dj", json={"action": "pause"})
    assert paused.json()["playing"] is False
    assert (await http.patch("/_control/users/dj", json={"action": "dance"})).status_code == 422
    assert (await http.get("/_control/users/nobody")).status_code == 404
    code = await http.post("/_control/users/dj/code", json={"redirect_uri": REDIRECT})
    answer = await token(
        http, fake, grant_type="authorization_code", code=code.json()["code"], redirect_uri=REDIRECT
    )
    access = answer.json()["access_token"]
    assert (await http.get("/v1/me", headers=bearer(access))).json()["id"] == "dj"
    await http.put("/_control/spotify", json={"refresh_mode": "rotate", "access_seconds": 60})
    rotated = await token(
        http, fake, grant_type="refresh_token", refresh_token=answer.json()["refresh_token"]
    )
    assert rotated.json()["expires_in"] == 60 and rotated.json()["refresh_token"]
    assert (await http.get("/v1/me/player/currently-playing", headers=bearer(access))).is_success
    await http.post("/_control/tokens/revoke", json={"user_id": "dj"})
    assert (
        await http.get("/v1/me/player/currently-playing", headers=bearer(access))
    ).status_code == 401
    counts = (await http.get("/_control/requests")).json()
    assert counts["requests"]["GET /v1/me/player/currently-playing dj"] == 1
