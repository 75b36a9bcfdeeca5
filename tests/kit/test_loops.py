"""LoopService: runs, pauses, wake-ups, failures backed off without dying, stop, hooks, stuck."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest

from lumio.kit.loops import LoopService, running

LONG = timedelta(seconds=60)


class Counting(LoopService):
    name = "counting"

    def __init__(self, interval: timedelta = LONG, fail_first: int = 0, **kwargs: object) -> None:
        super().__init__(interval, backoff_base=timedelta(seconds=0.01), **kwargs)  # type: ignore[arg-type]
        self.runs = 0
        self.fail_first = fail_first
        self.pause: timedelta | None = None
        self.ran = asyncio.Event()

    async def run_once(self) -> timedelta | None:
        self.runs += 1
        self.ran.set()
        if self.runs <= self.fail_first:
            raise RuntimeError(f"run {self.runs} broke")
        return self.pause


async def wait_runs(loop: Counting, runs: int, within: float = 2.0) -> None:
    async def until() -> None:
        while loop.runs < runs:
            loop.ran.clear()
            await loop.ran.wait()

    await asyncio.wait_for(until(), within)


async def test_start_with_loops_runs_that_many_times_without_waiting_after_the_last() -> None:
    loop = Counting(timedelta(seconds=0.01))
    await asyncio.wait_for(loop.start(loops=3), 2.0)
    assert loop.runs == 3
    assert loop.last_success is not None


async def test_the_interval_separates_runs_and_wake_cuts_it_short() -> None:
    loop = Counting(LONG)
    task = asyncio.create_task(loop.start())
    await wait_runs(loop, 1)
    await asyncio.sleep(0.1)
    assert loop.runs == 1  # waiting out the (long) interval
    loop.wake()
    await wait_runs(loop, 2)
    loop.stop()
    await asyncio.wait_for(task, 1.0)
    assert loop.runs == 2


async def test_run_once_may_ask_for_a_shorter_pause() -> None:
    loop = Counting(LONG)
    loop.pause = timedelta(seconds=0.01)
    async with running(loop):
        await wait_runs(loop, 3)


async def test_a_wake_before_a_run_is_answered_by_that_run() -> None:
    loop = Counting(LONG)
    loop.wake()
    task = asyncio.create_task(loop.start())
    await wait_runs(loop, 1)
    await asyncio.sleep(0.1)
    assert loop.runs == 1
    loop.stop()
    await asyncio.wait_for(task, 1.0)


async def test_a_failing_run_is_logged_and_backed_off_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = Counting(timedelta(seconds=0.01), fail_first=2)
    with caplog.at_level(logging.ERROR, logger="lumio.kit.loops"):
        await asyncio.wait_for(loop.start(loops=3), 2.0)
    assert loop.runs == 3
    assert loop.failures == 0  # reset by the success
    assert loop.last_success is not None
    failed = [r for r in caplog.records if "counting failed" in r.getMessage()]
    assert [r.getMessage() for r in failed] == [
        "counting failed (1 in a row)",
        "counting failed (2 in a row)",
    ]
    assert all(r.exc_info is not None for r in failed)


def test_backoff_doubles_per_failure_up_to_the_cap_with_a_little_jitter() -> None:
    loop = LoopService(LONG, backoff_base=timedelta(seconds=0.5), backoff_cap=timedelta(seconds=30))
    for failures, full in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (200, 30.0)]:
        delays = [loop.backoff(failures) for _ in range(50)]
        assert all(0.9 * full <= d <= full for d in delays), (failures, delays)


async def test_a_failure_pauses_for_the_backoff_not_the_interval() -> None:
    loop = Counting(timedelta(seconds=0.01), fail_first=1)
    loop.backoff_base = 0.2
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(loop.start(loops=2), 2.0)
    # The first failure waits base * 2 (less up to 10 %), far longer than the interval.
    assert asyncio.get_running_loop().time() - started >= 0.35


async def test_stop_ends_the_pause_at_once() -> None:
    loop = Counting(LONG)
    task = asyncio.create_task(loop.start())
    await wait_runs(loop, 1)
    loop.stop()
    await asyncio.wait_for(task, 0.5)
    assert loop.stopping
    assert loop.runs == 1


async def test_stop_before_start_runs_nothing() -> None:
    loop = Counting(LONG)
    loop.stop()
    await asyncio.wait_for(loop.start(), 0.5)
    assert loop.runs == 0


async def test_several_starts_share_one_loop_and_one_stop() -> None:
    loop = Counting(timedelta(seconds=0.01))
    tasks = [asyncio.create_task(loop.start()) for _ in range(3)]
    await wait_runs(loop, 9)
    loop.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), 1.0)


async def test_the_on_run_hook_hears_every_run_and_its_outcome() -> None:
    heard: list[tuple[str, bool, float]] = []
    loop = Counting(
        timedelta(seconds=0.01),
        fail_first=1,
        name="hooked",
        on_run=lambda *args: heard.append(args),
    )
    await asyncio.wait_for(loop.start(loops=3), 2.0)
    assert [(name, ok) for name, ok, _ in heard] == [
        ("hooked", False),
        ("hooked", True),
        ("hooked", True),
    ]
    assert all(took >= 0 for _, _, took in heard)


async def test_is_stuck_until_a_success_and_again_after_three_intervals() -> None:
    loop = Counting(timedelta(seconds=10), fail_first=1)
    assert loop.is_stuck()
    await loop.start(loops=1)
    assert loop.is_stuck()  # failed: still nothing good
    await loop.start(loops=1)
    assert not loop.is_stuck()
    assert loop.last_success is not None
    assert not loop.is_stuck(now=loop.last_success + 29)
    assert loop.is_stuck(now=loop.last_success + 31)


async def test_running_stops_the_loop_on_exit_without_cancelling_it() -> None:
    loop = Counting(LONG)
    async with running(loop) as same:
        assert same is loop
        await wait_runs(loop, 1)
    assert loop.stopping
    assert loop.runs == 1
