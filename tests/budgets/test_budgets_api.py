"""GET /v1/admin/budgets: the figures the workers plan with, for Owners and Administrators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
import pytest
from redis.asyncio import Redis

from lumio.detection.budget import budget_key, quota_key
from lumio.detection.quota import live_key
from lumio.detection.quota_plan import QuotaDay, QuotaFigures, QuotaPolicy, live_interval
from lumio.kit.permissions import RoleName
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform
from tests.conftest import Factory

LIVE = {"v": 1, "phase": "live", "stream": {"stream_id": "v1", "started_at": None}}


@pytest.fixture
async def seeded(db: asyncpg.Pool, redis: Redis, factory: Factory) -> AsyncIterator[None]:
    now = datetime.now(UTC)
    await redis.set(quota_key(now), 4_321)
    await redis.set(live_key(now), 4_000)
    await redis.hset(budget_key(Platform.TWITCH), mapping={"limit": 800, "remaining": 790})
    for n in range(5):
        account, _ = await factory.account(f"Budget {n}")
        state = LIVE if n < 2 else {}
        await db.execute(
            "INSERT INTO platform_channels (account_id, platform, channel_id, detector_state) "
            "VALUES ($1, 'youtube', $2, $3)",
            account,
            f"UC{n:022d}",
            orjson.dumps(state).decode(),
        )
    yield
    await redis.delete(quota_key(now), live_key(now), budget_key(Platform.TWITCH))


@pytest.mark.usefixtures("seeded")
async def test_operators_see_the_quota_and_the_planned_freshness(
    api: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    _, owner = await factory.account()
    response = await api.get("/v1/admin/budgets", headers=owner.bearer)
    assert response.status_code == 200, response.text
    budgets = {b["platform"]: b for b in response.json()}
    assert set(budgets) == {p.value for p in Platform}
    youtube, twitch = budgets["youtube"], budgets["twitch"]
    now = datetime.now(UTC)
    expected = live_interval(
        QuotaPolicy(settings.youtube.daily_quota, settings.detection.poll_live),
        QuotaFigures(4_321, 4_000, 2),
        now,
    )
    assert youtube == youtube | {
        "channelsTracked": 5,
        "channelsLive": 2,
        "dailyQuota": 10_000,
        "usedToday": 4_321,
        "remaining": 5_679,
        "liveReconfirmIntervalSeconds": expected.total_seconds(),
    }
    assert datetime.fromisoformat(youtube["resetsAt"]) == QuotaDay.of(now).end
    assert (twitch["rateLimit"], twitch["rateLimitRemaining"], twitch["dailyQuota"]) == (
        800,
        790,
        None,
    )
    assert budgets["kick"]["channelsTracked"] == 0


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (RoleName.ADMINISTRATOR, 200),
        (RoleName.MODERATOR, 403),
        (RoleName.VIEWER, 403),
    ],
)
async def test_only_those_who_manage_channels_see_budgets(
    api: httpx.AsyncClient, factory: Factory, role: RoleName, status: int
) -> None:
    account, _ = await factory.account()
    member = await factory.member(account, role)
    response = await api.get("/v1/admin/budgets", headers=member.bearer)
    assert response.status_code == status
    assert (await api.get("/v1/admin/budgets")).status_code == 401
