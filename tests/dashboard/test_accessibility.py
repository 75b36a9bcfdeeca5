"""The dashboard with the keyboard alone, and axe-core's WCAG level A rules on every screen."""

from __future__ import annotations

from importlib import resources

import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Page, expect
from redis.asyncio import Redis

from lumio.accounts import service as accounts
from lumio.kit.permissions import RoleName
from lumio.manual_connect.service import manual_key
from lumio.platforms.base import Platform
from tests.apiserver import ApiProcess
from tests.conftest import Factory
from tests.dashboard.conftest import screenshot_path
from tests.dashboard.flows import expect_connected, go_live, link, open_dashboard, sign_in

WCAG_LEVEL_A = ["wcag2a", "wcag21a"]


async def focused(page: Page) -> str:
    """The focused element as a person would name it: its label, its text or its id."""
    name: str = await page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el || el === document.body) return "(body)";
            if (el.labels && el.labels.length) return el.labels[0].textContent.trim();
            return el.textContent.trim() || el.id;
        }"""
    )
    return name


async def test_keyboard_only(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    account, owner = await factory.account("Nova")
    await accounts.create_account(factory.db, "Nova Music", owner.email)
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    await open_dashboard(page, dashboard_server.base_url)
    await expect(page.get_by_label("Email")).to_be_focused()

    await page.keyboard.type(owner.email)
    await page.keyboard.press("Tab")
    assert await focused(page) == "Password"
    await page.keyboard.type(owner.password)
    await page.keyboard.press("Tab")
    assert await focused(page) == "Sign in"
    await page.keyboard.press("Enter")
    await expect(page.locator("#dashboard-title")).to_be_focused()
    await expect_connected(page)
    await expect(page.locator("#cards > li")).to_have_count(1)

    # The order from the top of a freshly loaded page: skip link, header, the music card.
    await page.reload()
    await expect_connected(page)
    await expect(page.get_by_role("button", name="Start manual connect")).to_be_visible()
    order = []
    for _ in range(12):
        await page.keyboard.press("Tab")
        order.append(await focused(page))
    assert order == [
        "Skip to main content",
        "Account",
        "Switch",
        "Log out",
        "Status",
        "History",
        "Notifications",
        "Members",
        "API keys",
        "Your account",
        "Unlink Twitch",
        "Start manual connect",
    ]

    await page.keyboard.press("Enter")
    await expect(page.locator("#manual-label")).to_have_text("on")
    await expect(page.get_by_role("timer")).to_be_visible()
    assert await redis.exists(manual_key(account)) == 1
    await page.keyboard.press("Tab")
    assert await focused(page) == "Stop manual connect"
    await page.keyboard.press("Enter")
    await expect(page.locator("#manual-label")).to_have_text("off")
    assert await redis.exists(manual_key(account)) == 0
    # Stop disappears with the connect: the focus stays in the music card, on Start.
    await expect(page.get_by_role("button", name="Start manual connect")).to_be_focused()

    # The skip link takes the focus to the main content.
    await page.reload()
    await expect(page.get_by_role("button", name="Start manual connect")).to_be_visible()
    await page.keyboard.press("Tab")
    assert await focused(page) == "Skip to main content"
    await page.keyboard.press("Enter")
    await expect(page.locator("#main")).to_be_focused()

    # Log out with the keyboard too.
    await page.locator("#account-select").focus()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    assert await focused(page) == "Log out"
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Email")).to_be_focused()


async def axe_violations(page: Page) -> list[dict[str, object]]:
    source = (resources.files("axe_playwright_python") / "axe.min.js").read_text()
    # Evaluated over the DevTools protocol, which the page's CSP does not govern.
    await page.evaluate(source)
    violations: list[dict[str, object]] = await page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {
                runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
            });
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        WCAG_LEVEL_A,
    )
    return violations


async def test_no_wcag_level_a_violations(
    page: Page, dashboard_server: ApiProcess, factory: Factory, redis: Redis
) -> None:
    pytest.importorskip("axe_playwright_python", reason="axe-core comes from this package")
    account, owner = await factory.account("Nova")
    await accounts.create_account(factory.db, "Nova Music", owner.email)
    moderator = await factory.member(account, RoleName.MODERATOR)
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    await link(factory.db, account, Platform.KICK, "nova")
    await go_live(factory.db, redis, account, Platform.TWITCH, "Speedrun night", 1234)

    await open_dashboard(page, dashboard_server.base_url)
    await page.get_by_role("button", name="Sign in").click()  # with an error shown
    await expect(page.get_by_role("alert")).to_have_text("Enter your email and password.")
    assert await axe_violations(page) == [], "sign-in page"

    await sign_in(page, dashboard_server.base_url, owner)
    await page.get_by_role("button", name="Start manual connect").click()
    await expect(page.get_by_role("timer")).to_be_visible()
    await page.screenshot(path=screenshot_path("axe-owner"), full_page=True)
    assert await axe_violations(page) == [], "owner's dashboard"

    await page.get_by_role("button", name="Log out").click()
    await sign_in(page, dashboard_server.base_url, moderator)
    await expect(page.locator("#manual-readonly")).to_be_visible()
    assert await axe_violations(page) == [], "moderator's dashboard"
