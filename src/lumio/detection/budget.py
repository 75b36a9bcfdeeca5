"""Each platform's rate limit and quota as a budget shared by every worker replica, in Redis.

The latest figures a platform sent (Ratelimit-* headers, Retry-After, 429s) are written to
``lumio:budget:{platform}``; before claiming work a replica asks how long it must wait. YouTube's
daily quota is counted in ``lumio:quota:youtube:{date}`` (Pacific date, as Google resets it).
Redis being down never stops polling: the budget then only knows what this process saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.platforms.base import Platform, RateLimitInfo

log = logging.getLogger(__name__)

PACIFIC = ZoneInfo("America/Los_Angeles")


def budget_key(platform: Platform) -> str:
    return f"lumio:budget:{platform.value}"


def quota_key(moment: datetime) -> str:
    return f"lumio:quota:youtube:{moment.astimezone(PACIFIC).date().isoformat()}"


def next_pacific_midnight(moment: datetime) -> datetime:
    local = moment.astimezone(PACIFIC)
    midnight = datetime(local.year, local.month, local.day, tzinfo=PACIFIC) + timedelta(days=1)
    return midnight.astimezone(moment.tzinfo)


@dataclass(frozen=True, slots=True)
class BudgetView:
    remaining: int | None
    limit: int | None
    reset_at: float | None
    blocked_until: float | None
    quota_used: int | None

    def wait_seconds(self, now: float) -> float:
        """How long to hold off before the next request (0: go ahead)."""
        waits = [0.0]
        if self.blocked_until is not None:
            waits.append(self.blocked_until - now)
        if self.remaining is not None and self.remaining <= 0 and self.reset_at is not None:
            waits.append(self.reset_at - now)
        return max(waits)


def _number(value: bytes | None) -> float | None:
    return None if value is None else float(value)


class PlatformBudget:
    def __init__(self, redis: Redis, platform: Platform, daily_quota: int | None = None) -> None:
        self.redis = redis
        self.platform = platform
        self.daily_quota = daily_quota
        # What this process saw last, used when Redis cannot be read.
        self._local = BudgetView(None, None, None, None, None)

    async def view(self, now: datetime) -> BudgetView:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(
                    budget_key(self.platform), "remaining", "limit", "reset_at", "blocked_until"
                )
                pipe.get(quota_key(now))
                (remaining, limit, reset_at, blocked), used = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("budget unreadable, using local view: %s", exc)
            return self._local
        quota_used = int(used) if used is not None else None
        blocked_until = _number(blocked)
        if (
            self.daily_quota is not None
            and quota_used is not None
            and quota_used >= self.daily_quota
        ):
            blocked_until = max(blocked_until or 0.0, next_pacific_midnight(now).timestamp())
        remaining_n = _number(remaining)
        limit_n = _number(limit)
        return BudgetView(
            None if remaining_n is None else int(remaining_n),
            None if limit_n is None else int(limit_n),
            _number(reset_at),
            blocked_until,
            quota_used,
        )

    async def record(self, info: RateLimitInfo | None, quota_units: int, now: datetime) -> None:
        fields: dict[str, float] = {}
        blocked_until = self._local.blocked_until
        if info is not None:
            fields.update(
                {
                    k: v
                    for k, v in (
                        ("remaining", info.remaining),
                        ("limit", info.limit),
                        ("reset_at", info.reset_at),
                    )
                    if v is not None
                }
            )
            if info.retry_after is not None:
                blocked_until = now.timestamp() + info.retry_after
                fields["blocked_until"] = blocked_until
        self._local = BudgetView(
            info.remaining if info else None,
            info.limit if info else None,
            info.reset_at if info else None,
            blocked_until,
            self._local.quota_used,
        )
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for name, value in fields.items():
                    pipe.hset(budget_key(self.platform), name, value)
                if fields:
                    pipe.expire(budget_key(self.platform), 86_400)
                if quota_units:
                    pipe.incrby(quota_key(now), quota_units)
                    pipe.expire(quota_key(now), 2 * 86_400)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("budget not shared (Redis unavailable): %s", exc)
