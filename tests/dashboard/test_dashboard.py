"""The dashboard end to end: headless Chromium, a real `lumio api`, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from datetime import timedelta

import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.kit.auth_cache import INVALIDATE_CHANNEL
from lumio.kit.permissions import RoleName
from lumio.kit.secrets import token_hash
from lumio.manual_connect.service import manual_key
from lumio.platforms.base import Platform
from tests.apiserver import ApiProcess
from tests.conftest import Factory
from tests.dashboard.conftest import ROOT, screenshot_path
from tests.dashboard.flows import (
    card,
    field,
    go_live,
    go_offline,
    link,
    open_dashboard,
    parse_clock,
    sign_in,
)

# Set to write the README's screenshot (docs/dashboard.png) from test_overview_screenshot.
DOCS_SCREENSHOT_ENV = "LUMIO_DOCS_SCREENSHOT"


async def test_sign_in(page: Page, dashboard_server: ApiProcess, factory: Factory) -> None:
    _, owner = await factory.account("Nova")
    await open_dashboard(page, dashboard_server.base_url)
    await expect(page.get_by_role("heading", name="Sign in to Lumio")).to_be_visible()
    await expect(page.locator("#signin-notice")).to_be_empty()
    await page.get_by_label("Email").fill(owner.email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    await expect(page.locator("#dashboard")).to_be_hidden()

    await page.get_by_label("Password").fill(owner.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nova — live status")
    await expect(page.locator("#role-name")).to_have_text("owner")
    await expect(page.locator("#summary")).to_have_text(
        "No channels are linked to this account yet."
    )
    # The session is an HttpOnly cookie: the page's scripts cannot read it.
    cookies = await page.context.cookies()
    session = next(c for c in cookies if c["name"] == "lumio_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert await page.evaluate("document.cookie") == ""

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Sign in to Lumio")).to_be_visible()
    await expect(page.locator("#signin-notice")).to_have_text("You have signed out.")


async def test_a_channel_goes_live_and_offline_without_reload(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    await link(factory.db, account, Platform.KICK, "nova")
    await sign_in(page, dashboard_server.base_url, owner)
    twitch = card(page, Platform.TWITCH)
    await expect(twitch.locator(".badge")).to_have_text("Offline")
    await expect(card(page, Platform.KICK).locator(".badge")).to_have_text("Offline")
    await expect(page.locator("#summary")).to_have_text("Not live on any platform (2 linked)")
    await page.evaluate("window.__sameDocument = true")

    started = time.monotonic()
    await go_live(
        factory.db,
        redis,
        account,
        Platform.TWITCH,
        "Speedrun night",
        1234,
        live_for=timedelta(hours=1, minutes=2, seconds=3),
    )
    await expect(twitch.locator(".badge")).to_have_text("Live", timeout=1000)
    await expect(field(page, Platform.TWITCH, "title")).to_have_text("Speedrun night", timeout=1000)
    await expect(field(page, Platform.TWITCH, "viewers")).to_have_text("1,234", timeout=1000)
    assert time.monotonic() - started < 1.0
    await expect(field(page, Platform.TWITCH, "category")).to_have_text("Just Chatting")
    await expect(page.locator("#summary")).to_have_text("Live now on 1 of 2 platforms: Twitch")
    await expect(card(page, Platform.KICK).locator(".badge")).to_have_text("Offline")

    uptime = field(page, Platform.TWITCH, "uptime")
    await expect(uptime).to_have_text(re.compile(r"^\d+:\d{2}:\d{2}$"))
    first = parse_clock(await uptime.inner_text())
    assert 3723 <= first <= 3726
    await page.wait_for_timeout(1600)
    assert parse_clock(await uptime.inner_text()) > first, "the uptime counts up"
    await page.screenshot(path=screenshot_path("live-twitch"), full_page=True)

    started = time.monotonic()
    await go_offline(factory.db, redis, account, Platform.TWITCH)
    await expect(twitch.locator(".badge")).to_have_text("Offline", timeout=1000)
    assert time.monotonic() - started < 1.0
    await expect(field(page, Platform.TWITCH, "title")).to_have_text("Not live")
    await expect(uptime).to_have_text("—")
    await expect(page.locator("#summary")).to_have_text("Not live on any platform (2 linked)")
    assert await page.evaluate("window.__sameDocument") is True, "the page was not reloaded"


async def test_manual_connect_start_reload_stop(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    await sign_in(page, dashboard_server.base_url, owner)
    await expect(page.locator("#gate-note")).to_have_text(
        "Spotify is not being read: you are not live and manual connect is off."
    )
    await expect(page.get_by_role("button", name="Stop manual connect")).to_be_hidden()

    await page.get_by_role("button", name="Start manual connect").click()
    remaining = page.get_by_role("timer")
    await expect(page.locator("#manual-label")).to_have_text("on")
    await expect(remaining).to_be_visible()
    first = parse_clock(await remaining.inner_text())
    assert 1797 <= first <= 1800
    await page.wait_for_timeout(2100)
    running = parse_clock(await remaining.inner_text())
    assert first - 3 <= running <= first - 1, "the countdown runs"
    assert await redis.ttl(manual_key(account)) > 1790

    await page.reload()
    await expect(page.locator("#manual-label")).to_have_text("on")
    after_reload = parse_clock(await remaining.inner_text())
    assert abs(after_reload - running) <= 2, (running, after_reload)
    await expect(page.locator("#gate-note")).to_have_text(
        "Spotify is connected by hand until the countdown ends."
    )

    await page.get_by_role("button", name="Stop manual connect").click()
    await expect(page.locator("#manual-label")).to_have_text("off")
    await expect(remaining).to_be_hidden()
    await expect(page.get_by_role("button", name="Stop manual connect")).to_be_hidden()
    assert await redis.exists(manual_key(account)) == 0


async def test_the_note_says_when_only_the_stream_connects_spotify(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    from tests.dashboard.test_music import LINKED, SpotifyAnswers

    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.YOUTUBE, "Nova")
    # Only with a Spotify account linked does the note say that Spotify is read.
    await SpotifyAnswers(LINKED, None).install(page)
    await sign_in(page, dashboard_server.base_url, owner)
    await go_live(factory.db, redis, account, Platform.YOUTUBE, "Chill beats", 42)
    await expect(page.locator("#gate-note")).to_have_text(
        "Spotify is connected only because you are live on YouTube: it stops when the stream ends.",
        timeout=1000,
    )


async def test_a_moderator_sees_no_start_or_stop_and_a_forged_request_is_refused(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, _ = await factory.account("Nova")
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    moderator = await factory.member(account, RoleName.MODERATOR)
    await sign_in(page, dashboard_server.base_url, moderator)
    await expect(page.locator("#role-name")).to_have_text("moderator")
    await expect(card(page, Platform.TWITCH).locator(".badge")).to_have_text("Offline")
    await expect(page.locator("#manual-label")).to_have_text("off")
    await expect(page.locator("#manual-readonly")).to_be_visible()
    assert await page.get_by_role("button", name="Start manual connect").count() == 0
    assert await page.get_by_role("button", name="Stop manual connect").count() == 0

    # What a script on the page could do: read the CSRF token as the page does and post anyway.
    answers = await page.evaluate(
        """async () => {
            const me = await (await fetch("/v1/me")).json();
            const headers = {"X-CSRF-Token": me.csrfToken, "Content-Type": "application/json"};
            const rest = await fetch("/v1/spotify/manual-connect", {method: "POST", headers});
            const graphql = await fetch("/graphql", {method: "POST", headers,
                body: JSON.stringify({query: "mutation { startSpotifyManual { active } }"})});
            return {
                rest: rest.status, code: (await rest.json()).code,
                graphql: (await graphql.json()).errors[0].extensions.code,
                stop: (await fetch("/v1/spotify/manual-connect",
                                   {method: "DELETE", headers})).status,
            };
        }"""
    )
    assert answers == {"rest": 403, "code": "FORBIDDEN", "graphql": "FORBIDDEN", "stop": 403}
    assert await redis.exists(manual_key(account)) == 0


async def test_a_write_without_the_csrf_token_is_refused(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    await sign_in(page, dashboard_server.base_url, owner)
    status = await page.evaluate(
        """async () => (await fetch("/v1/spotify/manual-connect", {method: "POST"})).status"""
    )
    assert status == 403
    assert await redis.exists(manual_key(account)) == 0


async def test_switching_account_shows_only_that_accounts_channels(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    first, owner = await factory.account("Nova")
    second = await accounts.create_account(factory.db, "Nova Music", owner.email)
    await link(factory.db, first, Platform.TWITCH, "nova_plays")
    await link(factory.db, second, Platform.KICK, "nova_music")
    await link(factory.db, second, Platform.TROVO, "novamusic")
    await go_live(factory.db, redis, first, Platform.TWITCH, "Nova main stream", 10)
    await go_live(factory.db, redis, second, Platform.KICK, "Nova music stream", 20)

    await sign_in(page, dashboard_server.base_url, owner)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nova — live status")
    await expect(page.locator("#cards > li")).to_have_count(1)
    await expect(field(page, Platform.TWITCH, "title")).to_have_text("Nova main stream")

    await page.get_by_label("Account").select_option(label="Nova Music (owner)")
    await page.get_by_role("button", name="Switch").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nova Music — live status")
    await expect(page.locator("#cards > li")).to_have_count(2)
    await expect(field(page, Platform.KICK, "title")).to_have_text("Nova music stream")
    await expect(card(page, Platform.TROVO).locator(".badge")).to_have_text("Offline")
    await expect(card(page, Platform.TWITCH)).to_have_count(0)
    await expect(page.get_by_text("Nova main stream")).to_have_count(0)

    # The live stream follows the new account: the old one's events change nothing here.
    await page.locator("#live-indicator[data-state=connected]").wait_for()
    await go_offline(factory.db, redis, first, Platform.TWITCH)
    await go_live(factory.db, redis, second, Platform.TROVO, "Second stream", 5)
    await expect(field(page, Platform.TROVO, "title")).to_have_text("Second stream", timeout=1000)
    await expect(page.locator("#cards > li")).to_have_count(2)
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Nova Music — live status")


async def test_an_ended_session_goes_back_to_sign_in(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    _, owner = await factory.account("Nova")
    await sign_in(page, dashboard_server.base_url, owner)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "lumio_session")
    hashed = token_hash(cookie["value"])
    await factory.db.execute("DELETE FROM sessions WHERE token_hash = $1", hashed)
    await redis.publish(INVALIDATE_CHANNEL, hashed.hex())
    await asyncio.sleep(0.3)
    # The stream's own 10 s credential recheck may end the page first on a loaded machine;
    # either way the outcome below is the one that matters.
    with contextlib.suppress(PlaywrightTimeoutError):
        await page.get_by_role("button", name="Start manual connect").click(timeout=3000)
    await expect(page.get_by_role("heading", name="Sign in to Lumio")).to_be_visible()
    await expect(page.locator("#signin-notice")).to_have_text(
        "Your session has ended. Please sign in again."
    )
    await expect(page.get_by_label("Email")).to_be_focused()


async def test_overview_screenshot(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    """The README's picture: two of three platforms live and the manual connect running."""
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    await link(factory.db, account, Platform.YOUTUBE, "NovaPlays")
    await link(factory.db, account, Platform.KICK, "nova")
    await go_live(
        factory.db,
        redis,
        account,
        Platform.TWITCH,
        "Any% speedrun, world record attempts",
        1834,
        category="Celeste",
        live_for=timedelta(hours=1, minutes=12, seconds=40),
    )
    await go_live(
        factory.db,
        redis,
        account,
        Platform.KICK,
        "Any% speedrun (simulcast)",
        212,
        category="Celeste",
        live_for=timedelta(hours=1, minutes=11, seconds=5),
    )
    await sign_in(page, dashboard_server.base_url, owner)
    await page.get_by_role("button", name="Start manual connect").click()
    await expect(page.locator("#summary")).to_have_text(
        "Live now on 2 of 3 platforms: Twitch, Kick"
    )
    await expect(page.locator("#manual-label")).to_have_text("on")
    await page.locator("body").click(position={"x": 5, "y": 400})  # no focus ring in the picture
    picture = await page.screenshot(path=screenshot_path("overview-live"), full_page=True)
    assert len(picture) > 10_000
    if os.environ.get(DOCS_SCREENSHOT_ENV):
        await asyncio.to_thread(write_docs_picture, picture)


def write_docs_picture(picture: bytes) -> None:
    target = ROOT / "docs" / "dashboard.png"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(picture)


async def test_the_cards_show_the_push_status(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    await link(factory.db, account, Platform.KICK, "nova")
    topics = ["stream.online", "stream.offline", "channel.update"]
    await factory.db.executemany(
        "INSERT INTO push_subscriptions (platform, channel_id, topic, status) "
        "VALUES ('twitch', 'id-nova_plays', $1, 'enabled')",
        [(t,) for t in topics],
    )
    await factory.db.execute(
        "INSERT INTO push_subscriptions (platform, channel_id, topic, status) "
        "VALUES ('kick', 'id-nova', 'livestream.status.updated', 'revoked')"
    )
    await sign_in(page, dashboard_server.base_url, owner)
    await expect(card(page, Platform.TWITCH).locator(".push")).to_have_text("Push: on")
    kick = card(page, Platform.KICK).locator(".push")
    await expect(kick).to_have_text("Push: revoked, polling only")
