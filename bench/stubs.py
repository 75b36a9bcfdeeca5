"""What the worker benchmarks put in place of a platform: a clock they move and an adapter whose
side costs nothing (bench/history_bench.py, bench/webhooks_bench.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from lumio.platforms.base import (
    NO_LIVE_STREAMS,
    Observation,
    Platform,
    PollResult,
    RateLimitInfo,
    ResolvedChannel,
)


class BenchClock:
    """The poller's clock, moved by the bench: a cycle is due all at once, whatever the wall."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class StubAdapter:
    """A Kick adapter answering from ``seen`` (one request per batch of 100)."""

    platform = Platform.KICK
    batch_size = 100
    rate_limit: RateLimitInfo | None = None
    requests_sent = 0
    quota_used = 0

    def __init__(self, clock: BenchClock) -> None:
        self.clock = clock

    def seen(self, channel_id: str, now: datetime) -> Observation:
        raise NotImplementedError

    async def observe(
        self, channel_ids: list[str], live_streams: Mapping[str, str] = NO_LIVE_STREAMS
    ) -> PollResult:
        now = self.clock()
        return PollResult([self.seen(cid, now) for cid in channel_ids], requests=1)

    async def resolve(self, handle: str) -> ResolvedChannel:
        return ResolvedChannel(handle, handle)

    def remember_live(self, channel_id: str, stream_id: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
