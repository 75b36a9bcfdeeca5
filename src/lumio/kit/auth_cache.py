"""A short-lived, per-process cache of verified credentials.

Looking a key up in PostgreSQL on every request would cost a round trip per request (see
PERFORMANCE.md). An entry is trusted at most ``ttl`` seconds after it was read; revocation,
logout and account switches clear it at once here and, through Redis pub/sub, in every other
API process. While that feed is lost (``pause``) nothing is cached, so the ttl only bounds what
a process holds before it notices a lost feed, and changes made in PostgreSQL by hand.

Misses are kept out of the request path (issue 15): 2,000 keys verified in the same second used
to expire in the same second, and their requests queued for the pool together. So each entry
lives a random 80-100 % of ``ttl`` (never longer), and an entry used in the last quarter of its
life is read again in the background (``claim_refresh``) while the cached principal still
answers; a credential in steady use never waits for PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lumio.kit.principal import Credential, Principal

INVALIDATE_CHANNEL = "lumio:auth:invalidate"

# Share of the ttl an entry lives at least (the rest is random), and the share of its life
# after which a hit starts a background reload.
MIN_LIFE = 0.8
REFRESH_AT = 0.75
# Credentials waiting for or in a background reload; past this a hit just waits for the next
# one (or the expiry).
MAX_REFRESHING = 20_000


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    refresh_at: float
    principal: Principal


class AuthCache:
    def __init__(
        self,
        ttl: float,
        max_entries: int = 100_000,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._jitter = jitter
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._refreshing: dict[bytes, Credential] = {}
        self._queued: dict[bytes, Credential] = {}
        # The auth service's pending batch reload, if one is scheduled.
        self.refresh_task: asyncio.Task[None] | None = None
        # Bumped by every invalidation: a principal read before one is not stored after it.
        self.epoch = 0
        # While the invalidation feed (Redis) is lost nothing is cached: a revocation made
        # meanwhile could not reach this process.
        self.paused = False

    def get(self, token_hash: bytes) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._entries.pop(token_hash, None)
            return None
        return entry.principal

    def claim_refresh(self, token_hash: bytes) -> bool:
        """True (once) when a cached entry is due to be read again in the background."""
        entry = self._entries.get(token_hash)
        if entry is None or entry.refresh_at > time.monotonic():
            return False
        if token_hash in self._refreshing or len(self._refreshing) >= MAX_REFRESHING:
            return False
        self._refreshing[token_hash] = self._queued[token_hash] = entry.principal.credential
        return True

    def take_claimed(self) -> dict[bytes, Credential]:
        """The credentials claimed since the last call, to be read again."""
        claimed, self._queued = self._queued, {}
        return claimed

    def refreshed(self, hashes: dict[bytes, Credential]) -> None:
        for token_hash in hashes:
            self._refreshing.pop(token_hash, None)

    def put(self, principal: Principal, since: int | None = None) -> None:
        """Cache ``principal``, unless a credential was invalidated since epoch ``since``."""
        if self._ttl <= 0 or self.paused or (since is not None and since != self.epoch):
            return
        life = self._ttl * (MIN_LIFE + (1 - MIN_LIFE) * self._jitter())
        now = time.monotonic()
        entry = _Entry(now + life, now + life * REFRESH_AT, principal)
        self._entries[principal.token_hash] = entry
        self._entries.move_to_end(principal.token_hash)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self, token_hash: bytes) -> None:
        self.epoch += 1
        self._entries.pop(token_hash, None)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()

    def pause(self) -> None:
        """The invalidation feed is lost: forget everything and cache nothing until resumed."""
        self.paused = True
        self.clear()

    def resume(self) -> None:
        """Listening again: anything revoked while we were not is read afresh."""
        self.paused = False
        self.clear()
