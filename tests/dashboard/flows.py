"""What the browser tests do again and again: change a channel as the worker does, sign in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from playwright.async_api import Locator, Page, expect
from redis.asyncio import Redis

from lumio.channel_status import repository as status
from lumio.channel_status.schemas import OfflineWrite, OnlineWrite
from lumio.channels import repository as channels
from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.platforms.base import Platform
from tests.conftest import Member


async def link(db: asyncpg.Pool, account_id: UUID, platform: Platform, name: str) -> None:
    await channels.link(db, account_id, platform, f"id-{name}", name)


async def go_live(
    db: asyncpg.Pool,
    redis: Redis,
    account_id: UUID,
    platform: Platform,
    title: str,
    viewers: int,
    *,
    category: str = "Just Chatting",
    live_for: timedelta = timedelta(minutes=5),
) -> None:
    """Write the row, then publish the event after the commit, as the worker does."""
    now = datetime.now(UTC)
    write = OnlineWrite(account_id, platform, title, category, viewers, now - live_for, now)
    await status.set_online(db, write)
    event = StatusEvent(account_id, Reason.WENT_ONLINE, now, platform.value, True)
    await publish(redis, [event])


async def go_offline(db: asyncpg.Pool, redis: Redis, account_id: UUID, platform: Platform) -> None:
    now = datetime.now(UTC)
    await status.set_offline(db, OfflineWrite(account_id, platform, now))
    await publish(redis, [StatusEvent(account_id, Reason.WENT_OFFLINE, now, platform.value, False)])


async def open_dashboard(page: Page, base_url: str) -> None:
    await page.goto(base_url + "/")


async def sign_in(page: Page, base_url: str, member: Member) -> None:
    await open_dashboard(page, base_url)
    await page.get_by_label("Email").fill(member.email)
    await page.get_by_label("Password").fill(member.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#dashboard")).to_be_visible()
    await expect_connected(page)


async def expect_connected(page: Page) -> None:
    await expect(page.locator("#live-indicator")).to_have_attribute("data-state", "connected")


def card(page: Page, platform: Platform) -> Locator:
    return page.locator(f'#cards li[data-platform="{platform.value}"]')


def field(page: Page, platform: Platform, name: str) -> Locator:
    return card(page, platform).locator(f'[data-field="{name}"]')


def parse_clock(text: str) -> int:
    """Seconds of "mm:ss" or "h:mm:ss"."""
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds
