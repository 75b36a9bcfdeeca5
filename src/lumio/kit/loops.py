"""One base for every background loop (after Prefect's ``LoopService``).

A loop implements ``run_once()``; the base runs it every ``interval`` (or sooner when woken, or
when ``run_once`` asks for a shorter pause), logs a failing run and backs off with jitter
instead of dying, warns when a run overruns its interval, and stops at the next step after
``stop()``. ``start(loops=n)`` runs n iterations and returns, so tests need no sleeping.
Readiness probes read ``last_success`` (monotonic seconds of the last successful run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)

# Called with the loop's name after each run: (name, succeeded, seconds the run took).
RunHook = Callable[[str, bool, float], None]


class LoopRuns:
    """``lumio_loop_runs_total{loop,outcome}`` in a process's registry; called as a loop's
    ``on_run`` hook."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "lumio_loop_runs_total",
            "Background loop runs, by loop and outcome",
            ["loop", "outcome"],
            registry=registry,
        )

    def __call__(self, loop: str, succeeded: bool, seconds: float) -> None:
        self.counter.labels(loop, "ok" if succeeded else "failed").inc()


L = TypeVar("L", bound="LoopService")


class LoopService:
    name: str = "loop"

    def __init__(
        self,
        interval: timedelta,
        *,
        name: str | None = None,
        backoff_base: timedelta = timedelta(seconds=0.5),
        backoff_cap: timedelta = timedelta(seconds=30),
        on_run: RunHook | None = None,
    ) -> None:
        self.interval = interval
        self.name = name or self.name
        self.backoff_base = backoff_base.total_seconds()
        self.backoff_cap = backoff_cap.total_seconds()
        self.on_run = on_run
        self.last_success: float | None = None
        self.failures = 0
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    async def run_once(self) -> timedelta | None:
        """One iteration. Return how long to pause before the next (None: ``interval``)."""
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Run again now instead of waiting out the pause."""
        self._wake.set()

    def is_stuck(self, now: float | None = None, intervals: float = 3.0) -> bool:
        """No successful run within ``intervals`` intervals (readiness probes)."""
        if self.last_success is None:
            return True
        elapsed = (now if now is not None else time.monotonic()) - self.last_success
        return elapsed > intervals * max(self.interval.total_seconds(), 1.0)

    async def start(self, loops: int | None = None) -> None:
        """Run until ``stop()`` (or for ``loops`` iterations). Several may run at once."""
        done = 0
        failures = 0
        while not self.stopping and (loops is None or done < loops):
            pause, failures = await self._step(failures)
            done += 1
            if loops is None or done < loops:
                await self.sleep(pause)

    async def _step(self, failures: int) -> tuple[float, int]:
        started = time.monotonic()
        # A wake-up asked for before this run is answered by it; one during it, by the next.
        self._wake.clear()
        try:
            pause = await self.run_once()
        except Exception:
            failures += 1
            self.failures = failures
            log.exception("%s failed (%d in a row)", self.name, failures)
            self._report(False, started)
            return self.backoff(failures), failures
        self.failures = 0
        self.last_success = time.monotonic()
        took = self._report(True, started)
        if took > self.interval.total_seconds() > 0:
            log.warning("%s took %.1f s, longer than its interval", self.name, took)
        return (self.interval if pause is None else pause).total_seconds(), 0

    def backoff(self, failures: int) -> float:
        """The n-th failure in a row waits base * 2^n (at most the cap), less up to 10 %, so that
        replicas failing together (PostgreSQL down) neither spin nor retry in step."""
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** min(failures, 32))
        return delay * random.uniform(0.9, 1.0)

    def _report(self, succeeded: bool, started: float) -> float:
        took = time.monotonic() - started
        if self.on_run is not None:
            self.on_run(self.name, succeeded, took)
        return took

    async def sleep(self, seconds: float) -> None:
        """Pause, ending early on ``wake()`` or ``stop()``."""
        if seconds <= 0 or self.stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        if not self.stopping:
            self._wake.clear()


async def run_all(services: list[LoopService]) -> None:
    """Run loops side by side until every one has stopped (one failing never ends the rest)."""
    await asyncio.gather(*(service.start() for service in services))


@contextlib.asynccontextmanager
async def running(loop: L) -> AsyncIterator[L]:
    """``loop`` runs in the background for the duration; stopped (not cancelled) at the end."""
    task = asyncio.create_task(loop.start(), name=loop.name)
    try:
        yield loop
    finally:
        loop.stop()
        await task
