"""The operators' budget view: the same figures the workers plan with, read from Redis and
PostgreSQL (the live re-confirmation interval is recomputed from them with the planner's own
formula, ``detection.quota_plan``).

There is no operator role in DESIGN §8; the narrowest existing gate is ``channels:manage``
(Owners and Administrators), the permission under which channels, which spend the budgets, are
linked. The figures are platform-wide counts, nothing of any account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.budgets.schemas import PlatformBudget
from lumio.channels import repository as channels_repository
from lumio.detection.budget import budget_key, quota_key
from lumio.detection.quota import live_key
from lumio.detection.quota_plan import QuotaDay, QuotaFigures, QuotaPolicy, live_interval
from lumio.kit.errors import Unavailable
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.kit.settings import Settings
from lumio.platforms.base import Platform

_UNAVAILABLE = "the budgets are kept in Redis, which is not reachable; try again shortly"
_FIELDS = ("limit", "remaining", "reset_at", "blocked_until")


@dataclass(frozen=True, slots=True)
class _Shared:
    """What Redis holds for one platform: its last rate-limit answer (and YouTube's quota)."""

    window: dict[str, float]
    used: int = 0
    live_used: int = 0


async def read_budgets(
    db: asyncpg.Pool, redis: Redis, settings: Settings, principal: Principal
) -> list[PlatformBudget]:
    principal.require(Permission.CHANNELS_MANAGE)
    now = datetime.now(UTC)
    shared = await _read_shared(redis, now)
    return [await _budget(db, settings, p, shared[p], now) for p in Platform]


async def _read_shared(redis: Redis, now: datetime) -> dict[Platform, _Shared]:
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for platform in Platform:
                pipe.hmget(budget_key(platform), *_FIELDS)
            pipe.mget(quota_key(now), live_key(now))
            *windows, (used, live_used) = await pipe.execute()
    except (RedisError, OSError) as exc:
        raise Unavailable(_UNAVAILABLE) from exc
    found = {p: _Shared(_window(w)) for p, w in zip(Platform, windows, strict=True)}
    youtube = found[Platform.YOUTUBE]
    found[Platform.YOUTUBE] = _Shared(youtube.window, int(used or 0), int(live_used or 0))
    return found


def _window(values: list[bytes | None]) -> dict[str, float]:
    return {name: float(v) for name, v in zip(_FIELDS, values, strict=True) if v is not None}


async def _budget(
    db: asyncpg.Pool, settings: Settings, platform: Platform, shared: _Shared, now: datetime
) -> PlatformBudget:
    counted = await channels_repository.count_tracked(db, platform)
    budget = PlatformBudget(
        platform=platform.value,
        channels_tracked=counted.tracked,
        channels_live=counted.live,
        rate_limit=_int(shared.window.get("limit")),
        rate_limit_remaining=_int(shared.window.get("remaining")),
        rate_limit_resets_at=_time(shared.window.get("reset_at")),
        blocked_until=_time(shared.window.get("blocked_until")),
        daily_quota=None,
        used_today=None,
        remaining=None,
        resets_at=None,
        live_reconfirm_interval_seconds=None,
    )
    if platform is not Platform.YOUTUBE:
        return budget
    figures = QuotaFigures(shared.used, shared.live_used, counted.live)
    return _with_quota(budget, settings, figures, now)


def _with_quota(
    budget: PlatformBudget, settings: Settings, figures: QuotaFigures, now: datetime
) -> PlatformBudget:
    policy = QuotaPolicy(settings.youtube.daily_quota, settings.detection.poll_live)
    return budget.model_copy(
        update={
            "daily_quota": policy.daily_quota,
            "used_today": figures.used,
            "remaining": max(policy.daily_quota - figures.used, 0),
            "resets_at": QuotaDay.of(now).end,
            "live_reconfirm_interval_seconds": live_interval(policy, figures, now).total_seconds(),
        }
    )


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
