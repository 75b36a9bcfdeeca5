"""The dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
`lumio api` on the test PostgreSQL and Redis.

Playwright is imported inside the fixtures, so that the tests here that need no browser run
without it; the browser tests skip themselves when the ``playwright`` package is missing.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.apiserver import ApiProcess

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page

ROOT = Path(__file__).resolve().parent.parent.parent
SCREENSHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def dashboard_server(database_url: str, redis_url: str) -> Iterator[ApiProcess]:
    with ApiProcess(database_url, redis_url, SCREENSHOTS / "dashboard-api.log") as server:
        yield server


def chromium_executable() -> str:
    executable = shutil.which("chromium") or CHROMIUM
    if not Path(executable).exists():
        pytest.fail("the dashboard tests need Debian's chromium: apt-get install -y chromium")
    return executable


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    executable = chromium_executable()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / (re.sub(r"[^\w.-]+", "_", name).strip("_") + ".png")


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) per test; a screenshot of the end of every test.

    Script errors and Content-Security-Policy violations fail the test.
    """
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(5000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    try:
        yield page
    finally:
        if not page.is_closed():
            await page.screenshot(path=screenshot_path(request.node.name), full_page=True)
        await context.close()
    assert not problems, problems
