"""`lumio worker`: claims due channels in leased batches, polls, writes, publishes (DESIGN §3 to §5).

One poller per platform (and ``worker_concurrency`` loops of it). A batch is claimed with
``FOR UPDATE SKIP LOCKED`` and a lease; its results are stored in one transaction (the detector
states, then each batch writer as one statement), and its events are published only after the
commit. Any number of processes may run this on any number of hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
from redis.asyncio import Redis

from lumio.channel_status import repository as status_repository
from lumio.channel_status.schemas import Applied, OfflineWrite, OnlineWrite, StreamDataWrite
from lumio.channels import repository as channels_repository
from lumio.channels.schemas import ClaimedChannel, PollOutcome
from lumio.detection.budget import PlatformBudget
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.push_hints import PushIntervals, arm, fresh_online, push_delay
from lumio.detection.state_machine import (
    ChannelState,
    DetectorConfig,
    PollIntervals,
    Transition,
    next_poll_delay,
    step,
)
from lumio.events.publisher import publish
from lumio.events.schemas import Reason, StatusEvent
from lumio.kit.settings import Settings
from lumio.platforms.base import Observation, ObservationKind, Platform, PlatformAdapter
from lumio.push import repository as push_repository
from lumio.push.schemas import PushFacts
from lumio.push.service import push_platforms

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class PollerConfig:
    detector: DetectorConfig
    intervals: PollIntervals
    lease: timedelta
    backoff_max: timedelta
    # How late the oldest channel of a partial batch may get while more channels come due.
    batch_wait: timedelta = timedelta(seconds=0)
    daily_quota: int | None = None
    # Set when this platform's pushes are taken (LUMIO_PUBLIC_URL and its credentials).
    push: PushIntervals | None = None

    @classmethod
    def from_settings(cls, settings: Settings, platform: Platform) -> PollerConfig:
        grace = settings.grace_overrides.get(platform.value, settings.grace_seconds)
        sightings = 2 if platform.value in settings.confirm_online_platforms else 1
        return cls(
            detector=DetectorConfig(timedelta(seconds=grace), sightings),
            intervals=PollIntervals(
                offline=timedelta(seconds=settings.poll_offline_seconds),
                live=timedelta(seconds=settings.poll_live_seconds),
                settling=timedelta(seconds=settings.poll_settling_seconds),
            ),
            lease=timedelta(seconds=settings.lease_seconds),
            backoff_max=timedelta(seconds=settings.backoff_max_seconds),
            # 5 % of the offline interval, at most the setting: 3 s late at worst by default.
            batch_wait=timedelta(
                seconds=min(settings.poll_batch_wait_seconds, settings.poll_offline_seconds / 20)
            ),
            daily_quota=settings.youtube_daily_quota if platform is Platform.YOUTUBE else None,
            push=_push_intervals(settings, platform),
        )


def _push_intervals(settings: Settings, platform: Platform) -> PushIntervals | None:
    if platform not in push_platforms(settings):
        return None
    return PushIntervals(
        offline=timedelta(seconds=settings.poll_offline_with_push_seconds),
        unconfirmed=timedelta(seconds=settings.poll_settling_seconds),
    )


@dataclass(slots=True)
class _Batch:
    """One claimed batch on its way to the database."""

    outcomes: list[PollOutcome] = field(default_factory=list)
    transitions: list[tuple[ClaimedChannel, Transition]] = field(default_factory=list)
    online: list[OnlineWrite] = field(default_factory=list)
    offline: list[OfflineWrite] = field(default_factory=list)
    updates: list[StreamDataWrite] = field(default_factory=list)


def _restore(channel: ClaimedChannel) -> ChannelState:
    try:
        return ChannelState.from_json(channel.detector_state)
    except ValueError as exc:
        # A corrupt state must not stop the channel from being watched: start afresh.
        log.warning(
            "resetting detector state of %s/%s: %s", channel.platform, channel.account_id, exc
        )
        return ChannelState()


def _jittered(delay: timedelta, spread: float = 0.1) -> timedelta:
    # Spread polls so that channels linked at the same moment do not stay in lock step.
    return delay * random.uniform(1 - spread, 1 + spread)


class PlatformPoller:
    def __init__(
        self,
        adapter: PlatformAdapter,
        db: asyncpg.Pool,
        redis: Redis,
        config: PollerConfig,
        metrics: WorkerMetrics,
        clock: Clock = utc_now,
    ) -> None:
        self.adapter = adapter
        self.platform = adapter.platform
        self.db = db
        self.redis = redis
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.budget = PlatformBudget(redis, self.platform, config.daily_quota)

    async def run_once(self) -> int:
        """Claim, poll and store one batch; returns how many channels it polled (0: none due)."""
        now = self.clock()
        wait = (await self.budget.view(now)).wait_seconds(now.timestamp())
        token = uuid4()
        claimed = await channels_repository.claim(
            self.db,
            self.platform,
            now,
            self.adapter.batch_size,
            self.config.lease.total_seconds(),
            token,
        )
        if not claimed:
            return 0
        self.metrics.lag.labels(self.platform).set(
            max(0.0, (now - min(c.next_poll_at for c in claimed)).total_seconds())
        )
        if wait > 0:
            await channels_repository.release(self.db, token, now + timedelta(seconds=wait))
            self.metrics.throttled.labels(self.platform).inc()
            return 0
        oldest_due = min(c.next_poll_at for c in claimed)
        if len(claimed) < self.adapter.batch_size and oldest_due > now - self.config.batch_wait:
            # Not a full batch and nothing late yet: a request now would carry a few ids. Give
            # them back; they go out in a full batch, or once the oldest is batch_wait late.
            await channels_repository.release(self.db, token, None)
            return 0
        facts = await self._push_facts(claimed)
        states = [
            arm(_restore(c), facts.get(c.channel_id), now, self.config.detector) for c in claimed
        ]
        try:
            observations = await self._observe(claimed, states)
        except BaseException:
            # Stopping (or a bug): give the batch back at once rather than after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(channels_repository.release(self.db, token, now))
            raise
        batch = self._decide(claimed, states, observations, facts, now)
        events = await self._store(batch, token)
        self._hint_latency(facts, now)
        await publish(self.redis, events)
        await self._account(observations, events, batch)
        return len(claimed)

    async def _push_facts(self, claimed: Sequence[ClaimedChannel]) -> dict[str, PushFacts]:
        """Push health and hints of the claimed channels (nothing when push is off)."""
        if self.config.push is None:
            return {}
        ids = sorted({c.channel_id for c in claimed})
        facts = await push_repository.facts(self.db, self.platform, ids)
        now = self.clock()
        for fact in facts.values():
            if fact.online is not None and fresh_online(fact, now):
                # YouTube: the notified video is a candidate even before the feed lists it.
                self.adapter.remember_live(fact.channel_id, fact.online.stream_id)
        return facts

    def _hint_latency(self, facts: dict[str, PushFacts], claimed_at: datetime) -> None:
        committed = self.clock()
        for fact in facts.values():
            # Hints this batch answered: those that arrived shortly before its claim.
            if fact.hinted_at is not None and timedelta(
                0
            ) <= claimed_at - fact.hinted_at < timedelta(seconds=30):
                self.metrics.hint_latency.labels(self.platform).observe(
                    (committed - fact.hinted_at).total_seconds()
                )

    async def _observe(
        self, claimed: Sequence[ClaimedChannel], states: Sequence[ChannelState]
    ) -> dict[str, Observation]:
        for channel, state in zip(claimed, states, strict=True):
            if state.stream is not None:
                self.adapter.remember_live(channel.channel_id, state.stream.stream_id)
        sent_before, quota_before = self.adapter.requests_sent, self.adapter.quota_used
        ids = sorted({c.channel_id for c in claimed})
        observations = await self.adapter.observe(ids)
        self.metrics.requests.labels(self.platform).inc(self.adapter.requests_sent - sent_before)
        now = self.clock()
        await self.budget.record(
            self.adapter.rate_limit, self.adapter.quota_used - quota_before, now
        )
        return {o.channel_id: o for o in observations}

    def _decide(
        self,
        claimed: Sequence[ClaimedChannel],
        states: Sequence[ChannelState],
        observations: dict[str, Observation],
        facts: dict[str, PushFacts],
        claimed_at: datetime,
    ) -> _Batch:
        now = self.clock()
        batch = _Batch()
        for channel, state in zip(claimed, states, strict=True):
            observation = observations.get(channel.channel_id) or Observation(
                channel.channel_id,
                ObservationKind.UNKNOWN,
                now,
                error_kind="missing",
                error="the adapter returned no observation for this channel",
            )
            transition = step(state, observation, now, self.config.detector)
            batch.transitions.append((channel, transition))
            delay = self._delay(transition.state, facts.get(channel.channel_id), claimed_at, now)
            batch.outcomes.append(self._outcome(channel, observation, transition, now, delay))
            write = transition.write_for(channel.account_id, channel.platform)
            if isinstance(write, OnlineWrite):
                batch.online.append(write)
            elif isinstance(write, OfflineWrite):
                batch.offline.append(write)
            elif isinstance(write, StreamDataWrite):
                batch.updates.append(write)
        return batch

    def _outcome(
        self,
        channel: ClaimedChannel,
        observation: Observation,
        transition: Transition,
        now: datetime,
        delay: timedelta,
    ) -> PollOutcome:
        errors, last_error = 0, None
        if observation.kind is ObservationKind.UNKNOWN:
            errors = channel.consecutive_errors + 1
            last_error = f"{observation.error_kind}: {observation.error}"
            # Back off exponentially on errors, never beyond the cap, never below the interval.
            delay = min(self.config.backoff_max, delay * (2 ** min(errors - 1, 10)))
        return PollOutcome(
            channel.account_id,
            channel.platform,
            transition.state.to_json(),
            now + _jittered(delay),
            errors,
            last_error,
            now,
        )

    def _delay(
        self, state: ChannelState, fact: PushFacts | None, claimed_at: datetime, now: datetime
    ) -> timedelta:
        delay = next_poll_delay(state, self.config.intervals)
        if self.config.push is None:
            return delay
        return push_delay(state, fact, delay, self.config.push, claimed_at, now)

    async def _store(self, batch: _Batch, token: UUID) -> list[StatusEvent]:
        async with self.db.acquire() as conn, conn.transaction():
            kept = await channels_repository.complete(conn, batch.outcomes, token)
            applied: list[Applied] = [
                *await status_repository.set_online_many(conn, [w for w in batch.online if (w.account_id, w.platform) in kept]),
                *await status_repository.set_offline_many(conn, [w for w in batch.offline if (w.account_id, w.platform) in kept]),
                *await status_repository.update_stream_data_many(conn, [w for w in batch.updates if (w.account_id, w.platform) in kept]),
            ]  # fmt: skip
        self.metrics.rows_written.labels(self.platform).inc(len(applied))
        written = {(a.account_id, a.platform): a for a in applied}
        return [
            event
            for channel, transition in batch.transitions
            if (event := self._event(channel, transition, written)) is not None
        ]

    def _event(
        self,
        channel: ClaimedChannel,
        transition: Transition,
        written: dict[tuple[UUID, Platform], Applied],
    ) -> StatusEvent | None:
        applied = written.get((channel.account_id, channel.platform))
        if transition.reason is None or applied is None:
            return None
        # A went_online/went_offline is announced only when the row really changed state, so a
        # repeated or raced write never announces the same transition twice.
        if transition.reason in (Reason.WENT_ONLINE, Reason.WENT_OFFLINE) and not applied.changed:
            return None
        return StatusEvent(
            account_id=channel.account_id,
            reason=transition.reason,
            occurred_at=self.clock(),
            platform=channel.platform.value,
            is_online=transition.reason is not Reason.WENT_OFFLINE,
        )

    async def _account(
        self, observations: dict[str, Observation], events: list[StatusEvent], batch: _Batch
    ) -> None:
        self.metrics.polls.labels(self.platform).inc(len(batch.outcomes))
        for observation in observations.values():
            self.metrics.observations.labels(self.platform, observation.kind.value).inc()
            if observation.kind is ObservationKind.UNKNOWN:
                self.metrics.errors.labels(self.platform, observation.error_kind or "unknown").inc()
        for event in events:
            self.metrics.transitions.labels(self.platform, event.reason.value).inc()
        if self.adapter.rate_limit is not None and self.adapter.rate_limit.remaining is not None:
            self.metrics.budget_remaining.labels(self.platform).set(
                self.adapter.rate_limit.remaining
            )
        if self.config.daily_quota is not None:
            self.metrics.quota_used.labels(self.platform).set(self.adapter.quota_used)


class Worker:
    """Runs every platform's poller until stopped; errors are logged and retried, never fatal."""

    def __init__(self, pollers: Sequence[PlatformPoller], concurrency: int = 1) -> None:
        self.pollers = list(pollers)
        self.concurrency = concurrency
        self.stopping = asyncio.Event()
        # Set by a push hint (wake) or stop: a pausing loop of that platform claims at once.
        self._wakes = {poller.platform: asyncio.Event() for poller in self.pollers}

    def stop(self) -> None:
        self.stopping.set()
        for event in self._wakes.values():
            event.set()

    def wake(self, platform: Platform) -> None:
        """A channel of ``platform`` became due now (a push hint): end the pauses."""
        event = self._wakes.get(platform)
        if event is not None:
            event.set()

    async def run(self) -> None:
        loops = [
            asyncio.create_task(self._loop(poller), name=f"poll-{poller.platform}-{n}")
            for poller in self.pollers
            for n in range(self.concurrency)
        ]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _loop(self, poller: PlatformPoller) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                polled = await poller.run_once()
                failures = 0
            except Exception:
                failures += 1
                # PostgreSQL down, a bug in one batch: log, back off, and carry on.
                log.exception("polling %s failed (%d in a row)", poller.platform, failures)
                polled = 0
                await self._pause(min(30.0, 0.5 * 2**failures))
                continue
            if polled < poller.adapter.batch_size:
                # Nothing more is due (or a partial batch went back): a claim now would send a
                # near-empty batch (a request for a handful of channels).
                await self._pause(random.uniform(0.5, 1.0), poller.platform)

    async def _pause(self, seconds: float, platform: Platform | None = None) -> None:
        event = self._wakes.get(platform) if platform is not None else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((event or self.stopping).wait(), seconds)
        if event is not None and not self.stopping.is_set():
            event.clear()
