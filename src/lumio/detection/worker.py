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
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
from redis.asyncio import Redis

from lumio.channel_status import repository as status_repository
from lumio.channel_status.schemas import Applied, OfflineWrite, OnlineWrite, StreamDataWrite
from lumio.channels import repository as channels_repository
from lumio.channels.schemas import ClaimedChannel, PollOutcome
from lumio.detection.budget import PlatformBudget
from lumio.detection.metrics import WorkerMetrics
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
from lumio.kit.clock import Clock, jittered, utc_now
from lumio.kit.loops import LoopService
from lumio.kit.settings import Settings
from lumio.platforms.base import Observation, ObservationKind, Platform, PlatformAdapter
from lumio.webhooks import outbox
from lumio.webhooks.schemas import StreamContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PollerConfig:
    detector: DetectorConfig
    intervals: PollIntervals
    lease: timedelta
    backoff_max: timedelta
    # How late the oldest channel of a partial batch may get while more channels come due.
    batch_wait: timedelta = timedelta(seconds=0)
    daily_quota: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, platform: Platform) -> PollerConfig:
        detection = settings.detection
        grace = detection.grace_overrides.get(platform.value, detection.grace)
        sightings = 2 if platform.value in detection.confirm_online_platforms else 1
        return cls(
            detector=DetectorConfig(grace, sightings),
            intervals=PollIntervals(
                offline=detection.poll_offline,
                live=detection.poll_live,
                settling=detection.poll_settling,
            ),
            lease=detection.lease,
            backoff_max=detection.backoff_max,
            # 5 % of the offline interval, at most the setting: 3 s late at worst by default.
            batch_wait=min(detection.poll_batch_wait, detection.poll_offline / 20),
            daily_quota=settings.youtube.daily_quota if platform is Platform.YOUTUBE else None,
        )


@dataclass(slots=True)
class _Batch:
    """One claimed batch on its way to the database."""

    outcomes: list[PollOutcome] = field(default_factory=list)
    transitions: list[tuple[ClaimedChannel, Transition]] = field(default_factory=list)
    online: list[OnlineWrite] = field(default_factory=list)
    offline: list[OfflineWrite] = field(default_factory=list)
    updates: list[StreamDataWrite] = field(default_factory=list)
    # What webhook receivers are told beyond the event (the stream that started or ended).
    contexts: dict[tuple[UUID, str], StreamContext] = field(default_factory=dict)


def _restore(channel: ClaimedChannel) -> ChannelState:
    try:
        return ChannelState.from_json(channel.detector_state)
    except ValueError as exc:
        # A corrupt state must not stop the channel from being watched: start afresh.
        log.warning(
            "resetting detector state of %s/%s: %s", channel.platform, channel.account_id, exc
        )
        return ChannelState()


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
        states = [_restore(channel) for channel in claimed]
        try:
            observations = await self._observe(claimed, states)
        except BaseException:
            # Stopping (or a bug): give the batch back at once rather than after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(channels_repository.release(self.db, token, now))
            raise
        batch = self._decide(claimed, states, observations)
        events = await self._store(batch, token)
        await publish(self.redis, events)
        await self._account(observations, events, batch)
        return len(claimed)

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
            stream = transition.state.stream or state.stream
            batch.contexts[(channel.account_id, channel.platform.value)] = StreamContext(
                channel.channel_id, channel.display_name, stream
            )
            batch.outcomes.append(self._outcome(channel, observation, transition, now))
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
    ) -> PollOutcome:
        delay = next_poll_delay(transition.state, self.config.intervals)
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
            # Jittered: channels linked at the same moment must not stay in lock step.
            now + jittered(delay),
            errors,
            last_error,
            now,
        )

    async def _store(self, batch: _Batch, token: UUID) -> list[StatusEvent]:
        async with self.db.acquire() as conn, conn.transaction():
            kept = await channels_repository.complete(conn, batch.outcomes, token)
            applied: list[Applied] = [
                *await status_repository.set_online_many(conn, [w for w in batch.online if (w.account_id, w.platform) in kept]),
                *await status_repository.set_offline_many(conn, [w for w in batch.offline if (w.account_id, w.platform) in kept]),
                *await status_repository.update_stream_data_many(conn, [w for w in batch.updates if (w.account_id, w.platform) in kept]),
            ]  # fmt: skip
            written = {(a.account_id, a.platform): a for a in applied}
            events = [
                event
                for channel, transition in batch.transitions
                if (event := self._event(channel, transition, written)) is not None
            ]
            # The transactional outbox: the deliveries commit (or roll back) with the change.
            await outbox.enqueue_status_events(conn, events, batch.contexts)
        self.metrics.rows_written.labels(self.platform).inc(len(applied))
        return events

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


class PollLoop(LoopService):
    """One platform's poll loop: batch after batch while full ones come due, else a short pause.

    A failing batch (PostgreSQL down, a bug) is logged and backed off by the base class;
    ``stop()`` lets the batch in hand finish (or go back) and ends the loop.
    """

    def __init__(self, poller: PlatformPoller) -> None:
        metrics = poller.metrics
        super().__init__(timedelta(0), name=f"poll-{poller.platform}", on_run=metrics.loop_run)
        self.poller = poller

    async def run_once(self) -> timedelta:
        polled = await self.poller.run_once()
        if polled < self.poller.adapter.batch_size:
            # Nothing more is due (or a partial batch went back): a claim now would send a
            # near-empty batch (a request for a handful of channels).
            return timedelta(seconds=random.uniform(0.5, 1.0))
        return timedelta(0)


class Worker:
    """Runs every platform's poller until stopped; errors are logged and retried, never fatal."""

    def __init__(self, pollers: Sequence[PlatformPoller], concurrency: int = 1) -> None:
        self.pollers = list(pollers)
        self.concurrency = concurrency
        self.loops = [PollLoop(poller) for poller in self.pollers]

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()

    async def run(self) -> None:
        # ``concurrency`` runs of each platform's loop, side by side (claims skip each other).
        tasks = [
            asyncio.create_task(loop.start(), name=f"{loop.name}-{n}")
            for loop in self.loops
            for n in range(self.concurrency)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
