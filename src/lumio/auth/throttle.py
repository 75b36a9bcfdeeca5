"""Sign-in throttling: failures counted in Redis per account (email) and per client address.

Every API replica reads the same counters, so spreading guesses over replicas gains nothing.
Each failure within the window makes the next answer wait longer (doubling from a base, capped);
past the limit the answer is 429 with Retry-After until the window ends, without verifying the
password at all. The account counter is keyed by the normalised email, known or not, so an
unknown email is throttled (and answered) exactly like a wrong password. A success clears the
account counter; the address counter runs out with its window. With Redis unreachable sign-in
is not throttled (it still works, slowly, on the bounded Argon2 pool).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.kit.errors import TooManyRequests
from lumio.kit.settings import Settings

log = logging.getLogger(__name__)

_TOO_MANY = "too many failed sign-ins; wait before trying again"


def account_key(email: str) -> str:
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return f"lumio:login_failures:account:{digest}"


def address_key(address: str) -> str:
    return f"lumio:login_failures:address:{address}"


def delay_after(failures: int, base: float, cap: float) -> float:
    """How long to wait before answering, given the failures so far in the window."""
    if failures <= 0 or base <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    redis: Redis
    window_seconds: int
    max_failures: int
    max_failures_per_address: int
    delay_base_seconds: float
    delay_max_seconds: float

    @classmethod
    def of(cls, redis: Redis, settings: Settings) -> LoginThrottle:
        return cls(
            redis,
            settings.api.login_window_seconds,
            settings.api.login_max_failures,
            settings.api.login_max_failures_per_address,
            settings.api.login_delay_base_seconds,
            settings.api.login_delay_max_seconds,
        )

    async def admit(self, email: str, address: str) -> float:
        """Seconds to wait before verifying; raises TooManyRequests past the limits."""
        keys = (account_key(email), address_key(address))
        try:
            account, by_address = await self.redis.mget(keys)
            if int(account or 0) >= self.max_failures:
                raise TooManyRequests(_TOO_MANY, await self._ttl(keys[0]))
            if int(by_address or 0) >= self.max_failures_per_address:
                raise TooManyRequests(_TOO_MANY, await self._ttl(keys[1]))
        except (RedisError, OSError) as exc:
            log.warning("sign-in throttling skipped, Redis unreachable: %s", exc)
            return 0.0
        return delay_after(int(account or 0), self.delay_base_seconds, self.delay_max_seconds)

    async def failed(self, email: str, address: str) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in (account_key(email), address_key(address)):
                    # The window starts at the first failure (a fixed window, then it resets).
                    pipe.set(key, 0, ex=self.window_seconds, nx=True)
                    pipe.incr(key)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not count a failed sign-in: %s", exc)

    async def succeeded(self, email: str) -> None:
        try:
            await self.redis.delete(account_key(email))
        except (RedisError, OSError) as exc:
            log.warning("could not reset the sign-in failures: %s", exc)

    async def _ttl(self, key: str) -> int:
        ttl = int(await self.redis.ttl(key))
        return ttl if ttl > 0 else self.window_seconds
