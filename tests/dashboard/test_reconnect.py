"""The page reconnects by itself after the API or Redis restarts, and re-reads what it missed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright.async_api", reason="the browser tests need playwright")

from playwright.async_api import Page, expect
from redis.asyncio import Redis

from lumio.dev.fakes.server import free_port
from lumio.embedded import EmbeddedRedis
from lumio.kit.resources import create_redis
from lumio.platforms.base import Platform
from tests.apiserver import ApiProcess
from tests.conftest import Factory
from tests.dashboard.conftest import screenshot_path
from tests.dashboard.flows import card, expect_connected, field, go_live, go_offline, link, sign_in

INDICATOR = "#live-indicator"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def own_redis_client(own_redis: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = create_redis(own_redis.url)
    yield client
    await client.aclose()


async def test_reconnects_after_the_api_restarts(
    page: Page, database_url: str, redis_url: str, factory: Factory, redis: Redis, tmp_path: Path
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.TWITCH, "nova_plays")
    server = ApiProcess(database_url, redis_url, tmp_path / "api.log")
    server.start()
    try:
        await sign_in(page, server.base_url, owner)
        await expect(card(page, Platform.TWITCH).locator(".badge")).to_have_text("Offline")

        await asyncio.to_thread(server.stop)
        await expect(page.locator(INDICATOR)).to_have_attribute("data-state", "reconnecting")
        # Goes live while no API listens: the event is lost, the re-read must catch it.
        await go_live(factory.db, redis, account, Platform.TWITCH, "Back online", 7)
        await page.screenshot(path=screenshot_path("api-down"), full_page=True)
        await asyncio.to_thread(server.start)

        await expect(page.locator(INDICATOR)).to_have_attribute(
            "data-state", "connected", timeout=15_000
        )
        await expect(field(page, Platform.TWITCH, "title")).to_have_text("Back online")
        await go_offline(factory.db, redis, account, Platform.TWITCH)
        await expect(card(page, Platform.TWITCH).locator(".badge")).to_have_text(
            "Offline", timeout=1000
        )
    finally:
        server.stop()


async def test_reconnects_after_redis_restarts(
    page: Page,
    database_url: str,
    own_redis: EmbeddedRedis,
    own_redis_client: Redis,
    factory: Factory,
    tmp_path: Path,
) -> None:
    account, owner = await factory.account("Nova")
    await link(factory.db, account, Platform.KICK, "nova")
    with ApiProcess(database_url, own_redis.url, tmp_path / "api.log") as server:
        await sign_in(page, server.base_url, owner)
        await expect(card(page, Platform.KICK).locator(".badge")).to_have_text("Offline")

        await asyncio.to_thread(own_redis.stop)
        await expect(page.locator(INDICATOR)).to_have_attribute("data-state", "paused")
        # The row is written while Redis is down (the worker's event is lost).
        await go_live(factory.db, own_redis_client, account, Platform.KICK, "Missed event", 3)
        await expect(page.locator("#gate-note")).to_contain_text("Redis is down")
        await page.screenshot(path=screenshot_path("redis-down"), full_page=True)
        await asyncio.to_thread(own_redis.start)

        await expect(page.locator(INDICATOR)).to_have_attribute(
            "data-state", "connected", timeout=15_000
        )
        await expect(field(page, Platform.KICK, "title")).to_have_text("Missed event")
        await expect_connected(page)
        await go_offline(factory.db, own_redis_client, account, Platform.KICK)
        await expect(card(page, Platform.KICK).locator(".badge")).to_have_text(
            "Offline", timeout=1000
        )
