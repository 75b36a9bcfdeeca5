"""The one clock, jitter and worker identity every process uses.

Pure code takes a ``Clock`` argument instead of calling this module, so tests drive time.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def worker_id() -> str:
    """This process, as logs and leases name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def jittered(delay: timedelta, spread: float = 0.1) -> timedelta:
    """``delay`` ± ``spread``, so that many channels or replicas do not fall into step."""
    return delay * random.uniform(1 - spread, 1 + spread)


def backoff_seconds(failures: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter: up to ``base`` * 2^(failures-1), at most ``cap``."""
    return random.uniform(0, min(cap, base * 2 ** max(failures - 1, 0)))
