"""The History view: the list of streams, one stream's viewer curve, stats, roles, a phone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Page, expect

from lumio.kit.permissions import RoleName
from tests.apiserver import ApiProcess
from tests.conftest import Factory
from tests.dashboard.conftest import screenshot_path
from tests.dashboard.flows import open_dashboard, sign_in
from tests.dashboard.test_accessibility import axe_violations
from tests.history.seed import seed_session


async def seed_history(factory: Factory) -> tuple[object, object]:
    account, owner = await factory.account("Nova")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1, hours=3)
    minute = timedelta(minutes=1)
    curve = [200 + (n * 13) % 90 for n in range(120)]
    twitch = await seed_session(
        factory.db, account, "twitch", start, curve, every=minute, title="Speedrun night"
    )
    await factory.db.execute(
        "INSERT INTO stream_segments (session_id, started_at, title, category)"
        " VALUES ($1, $2, 'Speedrun night: any%', 'Celeste')",
        twitch,
        start + timedelta(minutes=45),
    )
    await seed_session(
        factory.db, account, "youtube", start + 10 * minute, [40 + n % 20 for n in range(100)],
        every=minute, title="Speedrun night (YouTube)",
    )  # fmt: skip
    await seed_session(
        factory.db, account, "kick", start - timedelta(days=3), [12, 15, 14], title="Chatting"
    )
    await factory.db.execute(
        "INSERT INTO spotify_plays (account_id, kind, title, artists, started_at)"
        " VALUES ($1, 'track', 'Resurrections', '{Lena Raine}', $2)",
        account,
        start + 20 * minute,
    )
    return account, owner


async def test_history_list_and_a_stream(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    pytest.importorskip("axe_playwright_python", reason="axe-core comes from this package")
    _, owner = await seed_history(factory)
    await sign_in(page, dashboard_server.base_url, owner)  # type: ignore[arg-type]
    await open_history(page)
    history = page.locator("#history")
    await expect(history).to_be_visible()
    rows = page.locator("#history-rows tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("twitch, youtube")
    await expect(page.locator('.stats-group[data-days="7"]')).to_contain_text("Streams3")
    await page.locator("#history").screenshot(path=screenshot_path("history-list"))
    assert await axe_violations(page) == [], "history list"

    # Keyboard: open the simulcast, then back to the list.
    await rows.first.get_by_role("button").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#broadcast-title")).to_be_focused()
    chart = page.locator("#broadcast-chart")
    await expect(chart.locator("canvas")).to_have_count(1)
    summary = re.compile(
        r"Viewers over time on twitch and youtube: twitch peak 289, average \d+; "
        r"youtube peak 59, average \d+\. Combined peak \d+\."
    )
    await expect(chart).to_have_attribute("aria-label", summary)
    await expect(page.locator("#broadcast-segments li")).to_have_count(3)
    await expect(page.locator("#broadcast-segments")).to_contain_text("Celeste")
    await expect(page.locator("#broadcast-tracks li")).to_have_count(1)
    await expect(page.locator("#broadcast-tracks")).to_contain_text("Resurrections — Lena Raine")
    await page.locator("#history").screenshot(path=screenshot_path("history-stream"))
    assert await axe_violations(page) == [], "one stream"
    await page.get_by_role("button", name="Back to all streams").click()
    await expect(page.locator("#history-title")).to_be_focused()
    await expect(rows).to_have_count(2)


async def test_a_viewer_sees_no_history(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    account, _ = await seed_history(factory)
    viewer = await factory.member(account, RoleName.VIEWER)  # type: ignore[arg-type]
    await open_dashboard(page, dashboard_server.base_url)
    await page.get_by_label("Email").fill(viewer.email)
    await page.get_by_label("Password").fill(viewer.password)
    await page.get_by_role("button", name="Sign in").click()
    await open_history(page)
    await expect(page.locator("#history-no-access")).to_be_visible()
    await expect(page.locator("#history-rows tr")).to_have_count(0)


async def test_history_on_a_phone(
    page: Page, dashboard_server: ApiProcess, factory: Factory
) -> None:
    _, owner = await seed_history(factory)
    await page.set_viewport_size({"width": 390, "height": 844})
    await sign_in(page, dashboard_server.base_url, owner)  # type: ignore[arg-type]
    await open_history(page)
    await expect(page.locator("#history-rows tr")).to_have_count(2)
    await page.locator("#history-rows tr").first.get_by_role("button").click()
    await expect(page.locator("#broadcast-chart canvas")).to_have_count(1)
    # Nothing wider than the screen but the table, which scrolls in its own box.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await page.screenshot(path=screenshot_path("history-phone"), full_page=True)


async def open_history(page: Page) -> None:
    """History is a view of its own, from the views menu (#/history)."""
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="History").click()
    await expect(page.locator("#view-history")).to_be_visible()
    await expect(page.locator("#history-title")).to_be_focused()
    await expect(page.locator("#view-status")).to_be_hidden()
