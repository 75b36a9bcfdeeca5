"""Waiting in tests for something that happens in another task, thread or process."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], object | Awaitable[object]],
    within: float = 5.0,
    what: str = "the condition",
    step: float = 0.02,
) -> float:
    """Wait until ``check()`` (awaited when it returns an awaitable) is truthy; the seconds it
    took. Fails the test after ``within`` seconds."""
    started = time.monotonic()
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"{what}: not within {within} s"
        await asyncio.sleep(step)
