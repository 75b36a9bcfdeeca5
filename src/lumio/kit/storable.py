"""Values from outside made storable: what PostgreSQL's TEXT, JSONB and INT refuse, removed.

Shared by the platform worker (``detection/normalise.py``) and the Spotify worker: one refused
value must never fail a whole batch's transaction (issue 9).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 1000
# An INT column.
MAX_COUNT = 2**31 - 1
# Further from now than this, a platform's timestamp is a sentinel or garbage, not a time.
TIME_WINDOW = timedelta(days=1)

# NUL is refused by TEXT and JSONB; surrogates cannot be encoded as UTF-8 at all.
_REFUSED = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str | None, limit: int) -> str | None:
    """``value`` without the characters PostgreSQL refuses, at most ``limit`` characters."""
    if value is None:
        return None
    cleaned = _REFUSED.sub("", value[: limit * 2])[:limit]
    return cleaned or None


def clamp_count(value: int | None, what: str = "count") -> int | None:
    """A count that fits the INT column, or None (logged) when it cannot be one."""
    if value is None or 0 <= value <= MAX_COUNT:
        return value
    log.warning("dropping an impossible %s from a platform: %d", what, value)
    return None


def plausible_time(value: datetime | None, now: datetime) -> datetime | None:
    """``value`` when it lies within ``TIME_WINDOW`` of ``now``; None otherwise."""
    if value is None or value.tzinfo is None or abs(value - now) > TIME_WINDOW:
        return None
    return value
