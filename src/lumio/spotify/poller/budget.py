"""One request budget for the whole Spotify app, shared by every replica through Redis.

Spotify limits an app (not a user) over a rolling 30 s window and answers 429 with
``Retry-After``; the developer quota's 429 says ``QUOTA_EXCEEDED``. A replica that gets either
writes ``blocked_until`` into ``lumio:budget:spotify`` (only ever later, never earlier), and every
replica reads it before claiming work and checks its local copy before each request. With
``spotify_requests_per_30s`` set, requests are also counted per 30 s window
(``lumio:budget:spotify:window:{n}``), reserved a batch at a time. Redis being down never stops
polling: the budget then only knows what this process saw.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

BUDGET_KEY = "lumio:budget:spotify"
WINDOW_SECONDS = 30
KEEP_SECONDS = 86_400

# Keep the later of the stored and the new block, atomically (two replicas may both get a 429).
_BLOCK_SCRIPT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'blocked_until') or '0')
if tonumber(ARGV[1]) > current then
    redis.call('HSET', KEYS[1], 'blocked_until', ARGV[1], 'reason', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], 'blocked_until')
"""


def window_key(epoch: float) -> str:
    return f"{BUDGET_KEY}:window:{int(epoch // WINDOW_SECONDS)}"


class SpotifyBudget:
    def __init__(self, redis: Redis, requests_per_30s: int = 0) -> None:
        self.redis = redis
        self.requests_per_30s = requests_per_30s
        self.blocked_until = 0.0
        self.reason = ""

    def wait_locally(self, now: datetime) -> float:
        """Seconds to hold off by what this process knows (no round trip)."""
        return max(0.0, self.blocked_until - now.timestamp())

    async def wait_seconds(self, now: datetime) -> float:
        """Seconds every replica must hold off (0: go ahead); refreshes the local copy."""
        try:
            blocked, reason = await self.redis.hmget(BUDGET_KEY, "blocked_until", "reason")
        except (RedisError, OSError) as exc:
            log.debug("Spotify budget unreadable, using the local view: %s", exc)
        else:
            if blocked is not None and float(blocked) > self.blocked_until:
                self.blocked_until = float(blocked)
                self.reason = reason.decode() if isinstance(reason, bytes) else str(reason or "")
        return self.wait_locally(now)

    async def block(self, until: datetime, reason: str) -> None:
        self.blocked_until = max(self.blocked_until, until.timestamp())
        self.reason = reason
        try:
            await self.redis.eval(
                _BLOCK_SCRIPT, 1, BUDGET_KEY, repr(until.timestamp()), reason, KEEP_SECONDS
            )
        except (RedisError, OSError) as exc:
            log.warning("Spotify budget block not shared (Redis unavailable): %s", exc)

    async def reserve(self, wanted: int, now: datetime) -> int:
        """Take up to ``wanted`` requests from this window's share; returns how many were given."""
        if self.requests_per_30s <= 0 or wanted <= 0:
            return wanted
        key = window_key(now.timestamp())
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, wanted)
                pipe.expire(key, 2 * WINDOW_SECONDS)
                used, _ = await pipe.execute()
        except (RedisError, OSError):
            return wanted
        over = max(0, int(used) - self.requests_per_30s)
        granted = max(0, wanted - over)
        await self.give_back(wanted - granted, now)
        return granted

    async def give_back(self, unused: int, now: datetime) -> None:
        if self.requests_per_30s <= 0 or unused <= 0:
            return
        try:
            await self.redis.decrby(window_key(now.timestamp()), unused)
        except (RedisError, OSError) as exc:
            log.debug("could not give back %d Spotify requests: %s", unused, exc)
