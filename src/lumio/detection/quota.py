"""YouTube's quota pacer, shared by every worker replica (issue 15), over ``quota_plan``'s rules.

Units are granted before a ``videos.list`` call is sent and counted at once in Redis, atomically
against the allowance of their kind (``lumio:quota:youtube:{Pacific date}`` for all units,
``…:live`` for re-confirmations), so replicas together never pass the allowance, and so never
the quota. With Redis away a process grants against its own count: what it last read plus what
it granted since.

Every ``REFRESH`` the pacer reads today's figures and counts the live channels, and plans the
live re-confirmation interval from them; the worker schedules live channels on its ticks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.detection.budget import quota_key
from lumio.detection.quota_plan import (
    QuotaDay,
    QuotaFigures,
    QuotaPolicy,
    allowance,
    live_allowance,
    live_interval,
    next_tick,
)
from lumio.kit.clock import Clock, utc_now

log = logging.getLogger(__name__)

REFRESH = timedelta(seconds=30)
KEY_SECONDS = 2 * 86_400

# KEYS: all units, live units. ARGV: units wanted, limit, TTL, "1" when live.
# Grants what fits under the limit (possibly fewer than wanted) and counts it.
GRANT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if units <= 0 then return {0, used} end
redis.call('INCRBY', KEYS[1], units)
redis.call('EXPIRE', KEYS[1], ARGV[3])
if ARGV[4] == '1' then
  redis.call('INCRBY', KEYS[2], units)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return {units, used + units}
"""

LiveCounter = Callable[[], Awaitable[int]]


def live_key(moment: datetime) -> str:
    return quota_key(moment) + ":live"


class QuotaPacer:
    """Grants ``videos.list`` units (the YouTube adapter's ``QuotaGate``) and plans freshness."""

    def __init__(
        self, redis: Redis, policy: QuotaPolicy, count_live: LiveCounter, clock: Clock = utc_now
    ) -> None:
        self.redis = redis
        self.policy = policy
        self.clock = clock
        self._count_live = count_live
        self._grant = redis.register_script(GRANT)
        self._figures = QuotaFigures()
        self._day = QuotaDay.of(clock())
        self._refreshed_at: datetime | None = None
        self.interval = policy.min_interval
        # The last tick scheduled on each interval: a channel scheduled on a longer interval
        # than today's is still waiting for its tick.
        self._ticks: dict[timedelta, datetime] = {}

    @property
    def figures(self) -> QuotaFigures:
        return self._figures

    async def grant(self, units: int, live: bool) -> int:
        """Up to ``units`` calls that may be sent now, already counted (0: wait)."""
        if units <= 0:
            return 0
        now = self.clock()
        self._roll(now)
        limit = live_allowance(self.policy, now) if live else allowance(self.policy, now)
        try:
            granted, used = cast(
                list[int],
                await self._grant(
                    keys=[quota_key(now), live_key(now)],
                    args=[units, limit, KEY_SECONDS, "1" if live else "0"],
                ),
            )
        except (RedisError, OSError) as exc:
            log.debug("quota not shared (Redis unavailable): %s", exc)
            granted = max(min(units, limit - self._figures.used), 0)
            used = self._figures.used + granted
        self._spent(int(granted), int(used), live)
        return int(granted)

    def _spent(self, granted: int, used: int, live: bool) -> None:
        live_used = self._figures.live_used + (granted if live else 0)
        self._figures = replace(self._figures, used=used, live_used=live_used)

    def _roll(self, now: datetime) -> None:
        if now >= self._day.end:
            # Midnight Pacific: a new quota; what was planned for yesterday is over.
            self._day = QuotaDay.of(now)
            self._figures = QuotaFigures(live_channels=self._figures.live_channels)

    async def refresh(self, force: bool = False) -> None:
        """Read today's shared figures and replan the interval, at most every REFRESH."""
        now = self.clock()
        self._roll(now)
        if not force and self._refreshed_at is not None and now - self._refreshed_at < REFRESH:
            return
        self._refreshed_at = now
        await self._read(now)
        self._plan(now)

    async def _read(self, now: datetime) -> None:
        try:
            live_channels = await self._count_live()
        except Exception as exc:
            # The database away: plan with the last count.
            log.debug("live channels not counted: %s", exc)
            live_channels = self._figures.live_channels
        try:
            used, live_used = await self.redis.mget(quota_key(now), live_key(now))
        except (RedisError, OSError) as exc:
            log.debug("quota figures unreadable, using this process's: %s", exc)
            self._figures = replace(self._figures, live_channels=live_channels)
            return
        self._figures = QuotaFigures(int(used or 0), int(live_used or 0), live_channels)

    def _plan(self, now: datetime) -> None:
        self.interval = live_interval(self.policy, self._figures, now)

    def freshness(self) -> timedelta:
        """The longest a live channel may now wait for its next confirmation: the interval, or
        a longer one whose last tick (and the claim right after it) is still to come."""
        # A claim follows its tick within the shortest interval (it is due, not waiting).
        late = self.clock() - self.policy.min_interval
        waiting = [interval for interval, tick in self._ticks.items() if tick > late]
        return max([self.interval, *waiting])

    def next_confirmation(self, now: datetime) -> datetime:
        """When a live channel polled now is polled (and re-confirmed) next."""
        tick = next_tick(now, self.interval)
        self._ticks[self.interval] = max(tick, self._ticks.get(self.interval, tick))
        return tick

    def candidate_tick(self, now: datetime) -> datetime | None:
        """Candidates held now are confirmed at the next tick of the shortest interval (every
        live tick is one too), filling calls together (None: packing off)."""
        if not self.policy.pack_candidates:
            return None
        return next_tick(now, self.policy.min_interval)

    def remaining(self) -> int:
        return max(self.policy.daily_quota - self._figures.used, 0)
