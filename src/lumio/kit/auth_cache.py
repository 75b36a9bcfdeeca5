"""A short-lived, per-process cache of verified credentials.

Looking a key up in PostgreSQL on every request would cost a round trip per request (see
PERFORMANCE.md). Entries live ``ttl`` seconds; revocation, logout and account switches clear the
entry at once here and, through Redis pub/sub, in every other API process.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from lumio.kit.principal import Principal

INVALIDATE_CHANNEL = "lumio:auth:invalidate"


class AuthCache:
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    def get(self, token_hash: bytes) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._entries.pop(token_hash, None)
            return None
        return entry[1]

    def put(self, principal: Principal) -> None:
        if self._ttl <= 0:
            return
        self._entries[principal.token_hash] = (time.monotonic() + self._ttl, principal)
        self._entries.move_to_end(principal.token_hash)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self, token_hash: bytes) -> None:
        self._entries.pop(token_hash, None)

    def clear(self) -> None:
        self._entries.clear()
