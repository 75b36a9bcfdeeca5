"""The Notifications view: add an endpoint (its secret shown once), send a test, see the
delivery; the Discord kind previews its message; roles without webhooks:manage do not see it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Page, expect

from lumio.kit.crypto import new_key
from lumio.kit.permissions import RoleName
from tests.apiserver import ApiProcess
from tests.conftest import Factory
from tests.dashboard.conftest import SCREENSHOTS
from tests.dashboard.flows import sign_in


@pytest.fixture(scope="module")
def hooks_server(database_url: str, redis_url: str) -> Iterator[ApiProcess]:
    env = {"LUMIO_SPOTIFY_TOKEN_KEY": new_key(), "LUMIO_WEBHOOK_ALLOW_PRIVATE": "true"}
    log = SCREENSHOTS / "notifications-api.log"
    with ApiProcess(database_url, redis_url, log, env=env) as server:
        yield server


async def test_owner_adds_an_endpoint_and_sends_a_test(
    page: Page, hooks_server: ApiProcess, factory: Factory
) -> None:
    _, owner = await factory.account("Nova")
    await sign_in(page, hooks_server.base_url, owner)
    views = page.get_by_role("navigation", name="Views")
    await views.get_by_role("link", name="Notifications").click()
    view = page.locator("#notifications")
    await expect(view).to_be_visible()
    await expect(page.locator("#view-status")).to_be_hidden()

    await page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/hook")
    await page.get_by_label("Description").fill("my receiver")
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.locator("#hook-secret")).to_contain_text("whsec_")
    row = page.locator("#hook-rows tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("my receiver")
    await expect(row).to_contain_text("no delivery yet")

    await row.get_by_role("button", name="Send test").click()
    await expect(page.locator("#delivery-rows li")).to_contain_text("test: pending")

    await page.get_by_label("Kind").select_option("discord")
    await page.locator("#hook-template").fill("{title} on {platform}")
    await expect(page.locator("#hook-preview")).to_have_text("Speedrun night on Twitch")


async def test_a_moderator_does_not_see_notifications(
    page: Page, hooks_server: ApiProcess, factory: Factory
) -> None:
    account, _ = await factory.account("Nova")
    moderator = await factory.member(account, RoleName.MODERATOR)
    await sign_in(page, hooks_server.base_url, moderator)
    views = page.get_by_role("navigation", name="Views")
    await expect(views.get_by_role("link", name="History")).to_be_visible()
    await expect(views.get_by_role("link", name="Notifications")).to_be_hidden()
    # Asked for by its address, the view is not shown: the status is.
    await page.goto(hooks_server.base_url + "/#/notifications")
    await expect(page.locator("#view-status")).to_be_visible()
    await expect(page.locator("#notifications")).to_be_hidden()
