"""The music card's Spotify lines: link status, "Connect Spotify", the current track.

The Spotify link and now playing come from the Spotify poller's API (/v1/spotify/connection,
/v1/spotify/now-playing). Linking needs Spotify itself, so the tests of a linked account answer
those two reads in the browser with the API's documented shapes; everything else is real.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Page, Route, expect
from redis.asyncio import Redis

from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.permissions import RoleName
from tests.apiserver import ApiProcess
from tests.conftest import Factory
from tests.dashboard.flows import sign_in

LINKED = {
    "spotifyUserId": "nova-on-spotify",
    "displayName": "Nova",
    "scope": "user-read-currently-playing user-read-playback-state",
    "status": "active",
    "needsReauthorization": False,
    "statusDetail": None,
    "linkedAt": "2026-11-28T07:00:00Z",
    "polling": True,
    "lastPolledAt": None,
    "lastError": None,
}


def track(title: str, *artists: str, playing: bool = True) -> dict[str, Any]:
    return {
        "kind": "track",
        "isPlaying": playing,
        "itemId": "4uLU6hMCjMI75M1A2tKUQC",
        "title": title,
        "artists": list(artists),
        "album": "Whenever You Need Somebody",
        "artUrl": None,
        "url": None,
        "progressMs": 42000,
        "durationMs": 213573,
        "observedAt": datetime.now(UTC).isoformat(),
    }


class SpotifyAnswers:
    """Answers the page's two Spotify reads; ``now`` can change during the test."""

    def __init__(self, connection: object, now: object, status: int = 200) -> None:
        self.connection = connection
        self.now = now
        self.status = status

    async def install(self, page: Page) -> None:
        await page.route("**/v1/spotify/connection", self._connection)
        await page.route("**/v1/spotify/now-playing", self._now_playing)

    async def _connection(self, route: Route) -> None:
        await route.fulfill(
            status=self.status, content_type="application/json", body=json.dumps(self.connection)
        )

    async def _now_playing(self, route: Route) -> None:
        await route.fulfill(
            status=self.status, content_type="application/json", body=json.dumps(self.now)
        )


def spotify_api_deployed(base_url: str) -> bool:
    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    return "/v1/spotify/connection" in paths and "/v1/spotify/now-playing" in paths


async def test_the_current_track_follows_now_playing_events(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    answers = SpotifyAnswers(LINKED, track("Never Gonna Give You Up", "Rick Astley"))
    await answers.install(page)
    await sign_in(page, dashboard_server.base_url, owner)
    await expect(page.locator("#spotify-link")).to_have_text("Spotify linked: Nova.")
    await expect(page.locator("#now-playing")).to_have_text(
        "Now playing: Never Gonna Give You Up — Rick Astley"
    )
    await expect(page.get_by_role("button", name="Connect Spotify")).to_be_hidden()

    answers.now = track("Take On Me", "a-ha", playing=False)
    await publish(redis, [StatusEvent.manual(account, Reason.NOW_PLAYING_CHANGED)])
    await expect(page.locator("#now-playing")).to_have_text(
        "Now playing: Take On Me — a-ha (paused)", timeout=1000
    )
    answers.now = None
    await publish(redis, [StatusEvent.manual(account, Reason.NOW_PLAYING_CHANGED)])
    await expect(page.locator("#now-playing")).to_have_text(
        "No track information right now.", timeout=1000
    )


async def test_a_revoked_link_offers_to_reconnect(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    _, owner = await factory.account("Nova")
    revoked = LINKED | {"status": "needs_reauth", "needsReauthorization": True}
    await SpotifyAnswers(revoked, None).install(page)
    await sign_in(page, dashboard_server.base_url, owner)
    await expect(page.locator("#spotify-link")).to_have_text(
        "Spotify must be linked again: its access was revoked or has expired."
    )
    await expect(page.get_by_role("button", name="Reconnect Spotify")).to_be_visible()
    await expect(page.locator("#now-playing")).to_be_hidden()


async def test_without_the_spotify_api_the_card_shows_the_manual_connect_alone(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    _, owner = await factory.account("Nova")
    await SpotifyAnswers({"detail": "Not Found"}, {"detail": "Not Found"}, 404).install(page)
    await sign_in(page, dashboard_server.base_url, owner)
    await expect(page.get_by_role("button", name="Start manual connect")).to_be_visible()
    await expect(page.locator("#spotify-link")).to_be_hidden()
    await expect(page.locator("#now-playing")).to_be_hidden()
    await expect(page.locator("#spotify-connect")).to_be_hidden()
    await expect(page.locator("#dashboard-error")).to_be_empty()


async def test_an_unlinked_account_offers_connect_spotify_to_whom_may_link(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    if not spotify_api_deployed(dashboard_server.base_url):
        pytest.skip("this build has no Spotify link API")
    account, owner = await factory.account("Nova")
    moderator = await factory.member(account, RoleName.MODERATOR)
    await sign_in(page, dashboard_server.base_url, owner)
    await expect(page.locator("#spotify-link")).to_have_text(
        "Spotify is not linked to this account."
    )
    await expect(page.get_by_role("button", name="Connect Spotify")).to_be_visible()
    await expect(page.locator("#now-playing")).to_be_hidden()

    await page.get_by_role("button", name="Log out").click()
    await sign_in(page, dashboard_server.base_url, moderator)
    await expect(page.locator("#spotify-link")).to_have_text(
        "Spotify is not linked to this account."
    )
    assert await page.get_by_role("button", name="Connect Spotify").count() == 0
