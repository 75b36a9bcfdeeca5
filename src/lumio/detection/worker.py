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
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

import asyncpg
from redis.asyncio import Redis

from lumio.channel_status import repository as status_repository
from lumio.channel_status.schemas import Applied, OfflineWrite, OnlineWrite, StreamDataWrite
from lumio.channels import repository as channels_repository
from lumio.channels.schemas import ClaimedChannel, PollOutcome
from lumio.db.pool import REFUSED_DATA
from lumio.detection.budget import PlatformBudget
from lumio.detection.history_feed import note_history
from lumio.detection.metrics import WorkerMetrics
from lumio.detection.normalise import normalise
from lumio.detection.push_hints import PushIntervals, arm, fresh_online, push_delay
from lumio.detection.quota import QuotaPacer
from lumio.detection.quota_plan import QuotaPolicy
from lumio.detection.state_machine import (
    ChannelState,
    DetectorConfig,
    Phase,
    PollIntervals,
    Transition,
    Write,
    next_poll_delay,
    step,
)
from lumio.events.publisher import Backlog
from lumio.events.schemas import Reason, StatusEvent
from lumio.history import repository as history_repository
from lumio.history.schemas import HistoryBatch, SessionMark
from lumio.kit.clock import Clock, jittered, utc_now
from lumio.kit.loops import LoopService
from lumio.kit.settings import Settings
from lumio.kit.storable import MAX_ERROR_CHARS, clean_text
from lumio.platforms.base import (
    Observation,
    ObservationKind,
    Platform,
    PlatformAdapter,
    PollResult,
)
from lumio.platforms.youtube import YouTubeAdapter
from lumio.push import repository as push_repository
from lumio.push.schemas import PushFacts
from lumio.push.service import push_platforms
from lumio.webhooks import outbox
from lumio.webhooks.schemas import StreamContext

log = logging.getLogger(__name__)

# A loop that failed (PostgreSQL or Redis away) tries again at most this much later, so that it
# is back within 10 s of the outage's end (issue 9).
RETRY_CAP_SECONDS = 8.0

W = TypeVar("W", OnlineWrite, OfflineWrite, StreamDataWrite)
# What a batch write stored: the rows, and the events it announces (after the commit).
_Stored = tuple[list[Applied], list[StatusEvent]]


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
            push=_push_intervals(settings, platform),
        )


def _push_intervals(settings: Settings, platform: Platform) -> PushIntervals | None:
    if platform not in push_platforms(settings):
        return None
    return PushIntervals(
        offline=timedelta(seconds=settings.push.poll_offline_with_push_seconds),
        unconfirmed=settings.detection.poll_settling,
    )


@dataclass(frozen=True, slots=True)
class _Item:
    """One polled channel on its way to the database."""

    channel: ClaimedChannel
    transition: Transition
    outcome: PollOutcome
    write: Write | None


@dataclass(slots=True)
class _Batch:
    """One claimed batch on its way to the database."""

    items: list[_Item] = field(default_factory=list)
    history: HistoryBatch = field(default_factory=HistoryBatch)
    # What webhook receivers are told beyond the event (the stream that started or ended).
    contexts: dict[tuple[UUID, str], StreamContext] = field(default_factory=dict)

    @property
    def outcomes(self) -> list[PollOutcome]:
        return [item.outcome for item in self.items]

    @property
    def transitions(self) -> list[tuple[ClaimedChannel, Transition]]:
        return [(item.channel, item.transition) for item in self.items]

    def writes(self, kind: type[W], kept: set[tuple[UUID, Platform]]) -> list[W]:
        """The writes of one kind for the channels whose lease still held."""
        return [
            item.write
            for item in self.items
            if isinstance(item.write, kind) and (item.write.account_id, item.write.platform) in kept
        ]

    def halves(self) -> tuple[_Batch, _Batch]:
        middle = len(self.items) // 2
        return self._part(self.items[:middle]), self._part(self.items[middle:])

    def _part(self, items: list[_Item]) -> _Batch:
        keys = {(item.channel.account_id, item.channel.platform) for item in items}
        contexts = {k: c for k, c in self.contexts.items() if (k[0], Platform(k[1])) in keys}
        return _Batch(items, self.history.only(keys), contexts)


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
        self.pacer = self._quota_pacer()
        # Monotonic time of the last run_once that did not fail (readiness probes).
        self.last_success: float | None = None
        # Events committed while Redis was away go out before the next ones.
        self.backlog = Backlog()

    def last_success_at(self) -> float | None:
        return self.last_success

    def _quota_pacer(self) -> QuotaPacer | None:
        """YouTube's videos.list calls, planned against the daily quota (issue 15)."""
        if not isinstance(self.adapter, YouTubeAdapter) or self.config.daily_quota is None:
            return None
        policy = QuotaPolicy(self.config.daily_quota, self.config.intervals.live)
        pacer = QuotaPacer(self.redis, policy, self._count_live, self.clock)
        self.adapter.quota_gate = pacer
        return pacer

    async def _count_live(self) -> int:
        return (await channels_repository.count_tracked(self.db, self.platform)).live

    async def _plan_quota(self, claimed: Sequence[ClaimedChannel]) -> None:
        """Replan the day's quota and hand the adapter the verdicts stored with each channel."""
        if self.pacer is None or not isinstance(self.adapter, YouTubeAdapter):
            return
        await self.pacer.refresh()
        for channel in claimed:
            self.adapter.recall(channel.channel_id, channel.detector_state)

    def _stored_state(self, channel: ClaimedChannel, state: ChannelState) -> dict[str, object]:
        stored = state.to_json()
        if isinstance(self.adapter, YouTubeAdapter):
            # The adapter's verdicts and held candidates travel with the channel's lease.
            stored.update(self.adapter.memo(channel.channel_id))
        return stored

    async def run_once(self) -> int:
        """Claim, poll and store one batch; returns how many channels it polled (0: none due)."""
        if self.backlog.pending:
            await self.backlog.publish(self.redis, [])
        polled = await self._run_once()
        self.last_success = time.monotonic()
        return polled

    async def _run_once(self) -> int:
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
        await self._plan_quota(claimed)
        states = [
            arm(_restore(c), facts.get(c.channel_id), now, self.config.detector) for c in claimed
        ]
        try:
            result = await self._observe(claimed, states, self._hinted_streams(facts))
        except BaseException:
            # Stopping (or a bug): give the batch back at once rather than after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(channels_repository.release(self.db, token, now))
            raise
        now = self.clock()
        observations = {o.channel_id: normalise(o, now) for o in result.observations}
        batch = self._decide(claimed, states, observations, facts, now)
        events = await self._store(batch, token)
        self._hint_latency(facts, now)
        await self.backlog.publish(self.redis, events)
        await self._account(observations, events, batch, result)
        return len(claimed)

    async def _push_facts(self, claimed: Sequence[ClaimedChannel]) -> dict[str, PushFacts]:
        """Push health and hints of the claimed channels (nothing when push is off)."""
        if self.config.push is None:
            return {}
        ids = sorted({c.channel_id for c in claimed})
        return await push_repository.facts(self.db, self.platform, ids)

    def _hinted_streams(self, facts: dict[str, PushFacts]) -> dict[str, str]:
        """Streams a fresh push says are live: YouTube confirms the notified video even before
        the feed lists it."""
        now = self.clock()
        return {
            fact.channel_id: fact.online.stream_id
            for fact in facts.values()
            if fact.online is not None and fresh_online(fact, now)
        }

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
        self,
        claimed: Sequence[ClaimedChannel],
        states: Sequence[ChannelState],
        hinted: dict[str, str],
    ) -> PollResult:
        live_streams = hinted | {
            channel.channel_id: state.stream.stream_id
            for channel, state in zip(claimed, states, strict=True)
            if state.stream is not None
        }
        ids = sorted({c.channel_id for c in claimed})
        result = await self.adapter.observe(ids, live_streams)
        self.metrics.requests.labels(self.platform).inc(result.requests)
        now = self.clock()
        # Units the pacer granted are in the shared count already.
        await self.budget.record(result.rate_limit, result.quota_units - result.quota_prepaid, now)
        return result

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
            note_history(
                batch.history,
                channel.account_id,
                channel.platform,
                state,
                transition,
                self.config.detector.grace_period,
            )
            stream = transition.state.stream or state.stream
            batch.contexts[(channel.account_id, channel.platform.value)] = StreamContext(
                channel.channel_id, channel.display_name, stream
            )
            delay = self._delay(transition.state, facts.get(channel.channel_id), claimed_at, now)
            outcome = self._outcome(channel, observation, transition, now, delay)
            write = transition.write_for(channel.account_id, channel.platform)
            batch.items.append(_Item(channel, transition, outcome, write))
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
        if observation.kind is ObservationKind.UNKNOWN and not _deferred(observation):
            errors = channel.consecutive_errors + 1
            last_error = f"{observation.error_kind}: {observation.error}"
            # Back off exponentially on errors, never beyond the cap, never below the interval.
            delay = min(self.config.backoff_max, delay * (2 ** min(errors - 1, 10)))
        return PollOutcome(
            channel.account_id,
            channel.platform,
            self._stored_state(channel, transition.state),
            self._next_poll(transition.state, errors, now, delay, _deferred(observation)),
            errors,
            last_error,
            now,
        )

    def _next_poll(
        self, state: ChannelState, errors: int, now: datetime, delay: timedelta, deferred: bool
    ) -> datetime:
        if self.pacer is not None and state.phase is Phase.LIVE and errors == 0:
            # On the pacer's ticks, shared by every replica: live ids fill calls 50 at a time.
            return self.pacer.next_confirmation(now)
        if self.pacer is not None and deferred:
            # Its candidates wait for the tick at which every replica's come due together.
            return self.pacer.candidate_tick(now) or now + jittered(delay)
        # Jittered: channels linked at the same moment must not stay in lock step.
        return now + jittered(delay)

    def _delay(
        self, state: ChannelState, fact: PushFacts | None, claimed_at: datetime, now: datetime
    ) -> timedelta:
        delay = next_poll_delay(state, self.config.intervals)
        if self.config.push is None:
            return delay
        return push_delay(state, fact, delay, self.config.push, claimed_at, now)

    async def _store(self, batch: _Batch, token: UUID) -> list[StatusEvent]:
        applied, events = await self._store_isolating(batch, token)
        self.metrics.rows_written.labels(self.platform).inc(len(applied))
        return events

    async def _store_isolating(self, batch: _Batch, token: UUID) -> _Stored:
        """Store the batch; when PostgreSQL refuses a value, split it to store every other row.

        A refused row would otherwise fail its whole batch at every retry (issue 9). Halving
        finds k bad rows of n in about 2·k·log2(n) transactions; each bad channel is stored as
        an unknown poll with the error, so it backs off instead of retrying at once.
        """
        try:
            return await self._write(batch, token)
        except REFUSED_DATA as error:
            if len(batch.items) == 1:
                await self._store_refused(batch.items[0], token, error)
                return [], []
            log.warning(
                "%s batch of %d refused (%s): splitting it", self.platform, len(batch.items), error
            )
            first, second = batch.halves()
            applied, events = await self._store_isolating(first, token)
            more, more_events = await self._store_isolating(second, token)
            return [*applied, *more], [*events, *more_events]

    async def _write(self, batch: _Batch, token: UUID) -> _Stored:
        async with self.db.acquire() as conn, conn.transaction():
            kept = await channels_repository.complete(conn, batch.outcomes, token)
            applied = [
                *await status_repository.set_online_many(conn, batch.writes(OnlineWrite, kept)),
                *await status_repository.set_offline_many(conn, batch.writes(OfflineWrite, kept)),
                *await status_repository.update_stream_data_many(conn, batch.writes(StreamDataWrite, kept)),
            ]  # fmt: skip
            written = {(a.account_id, a.platform): a for a in applied}
            # Sessions, segments and viewer samples commit with the status they describe.
            sessions = await history_repository.record_batch(conn, batch.history.only(written))
            events = [
                event
                for channel, transition in batch.transitions
                if (event := self._event(channel, transition, written, sessions)) is not None
            ]
            # The transactional outbox: the deliveries commit (or roll back) with the change.
            await outbox.enqueue_status_events(conn, events, batch.contexts)
            return applied, events

    async def _store_refused(self, item: _Item, token: UUID, error: Exception) -> None:
        """Record a channel whose values PostgreSQL refused as an unknown poll, state unchanged."""
        channel, now = item.channel, self.clock()
        errors = channel.consecutive_errors + 1
        log.error(
            "%s/%s: the database refused its values: %s", self.platform, channel.account_id, error
        )
        message = clean_text(f"bad_data: {type(error).__name__}: {error}", MAX_ERROR_CHARS)
        delay = min(
            self.config.backoff_max, self.config.intervals.offline * (2 ** min(errors - 1, 10))
        )
        outcome = replace(
            item.outcome,
            detector_state=channel.detector_state,
            next_poll_at=now + jittered(delay),
            consecutive_errors=errors,
            last_error=message,
        )
        self.metrics.errors.labels(self.platform, "bad_data").inc()
        await channels_repository.complete(self.db, [outcome], token)

    def _event(
        self,
        channel: ClaimedChannel,
        transition: Transition,
        written: dict[tuple[UUID, Platform], Applied],
        sessions: dict[tuple[UUID, Platform], SessionMark],
    ) -> StatusEvent | None:
        applied = written.get((channel.account_id, channel.platform))
        if transition.reason is None or applied is None:
            return None
        # A went_online/went_offline is announced only when the row really changed state, so a
        # repeated or raced write never announces the same transition twice.
        if transition.reason in (Reason.WENT_ONLINE, Reason.WENT_OFFLINE) and not applied.changed:
            return None
        mark = _session_mark(
            transition.reason, sessions.get((channel.account_id, channel.platform))
        )
        return StatusEvent(
            account_id=channel.account_id,
            reason=transition.reason,
            occurred_at=self.clock(),
            platform=channel.platform.value,
            is_online=transition.reason is not Reason.WENT_OFFLINE,
            session_id=mark.session_id if mark else None,
            duration_seconds=mark.duration_seconds if mark else None,
        )

    async def _account(
        self,
        observations: dict[str, Observation],
        events: list[StatusEvent],
        batch: _Batch,
        result: PollResult,
    ) -> None:
        self.metrics.polls.labels(self.platform).inc(len(batch.outcomes))
        for observation in observations.values():
            self.metrics.observations.labels(self.platform, observation.kind.value).inc()
            if observation.kind is ObservationKind.UNKNOWN:
                self.metrics.errors.labels(self.platform, observation.error_kind or "unknown").inc()
        for event in events:
            self.metrics.transitions.labels(self.platform, event.reason.value).inc()
        if result.rate_limit is not None and result.rate_limit.remaining is not None:
            self.metrics.budget_remaining.labels(self.platform).set(result.rate_limit.remaining)
        if self.pacer is not None:
            self._quota_metrics(self.pacer)
        elif self.config.daily_quota is not None:
            self.metrics.quota_used.labels(self.platform).set(self.adapter.quota_used)

    def _quota_metrics(self, pacer: QuotaPacer) -> None:
        # Today's figures as every replica counted them (as of the pacer's last read or grant).
        self.metrics.quota_used.labels(self.platform).set(pacer.figures.used)
        self.metrics.quota_remaining.labels(self.platform).set(pacer.remaining())
        self.metrics.live_freshness.labels(self.platform).set(pacer.freshness().total_seconds())


class PollLoop(LoopService):
    """One platform's poll loop: batch after batch while full ones come due, else a short pause.

    A failing batch (PostgreSQL down, a bug) is logged and backed off by the base class;
    ``stop()`` lets the batch in hand finish (or go back) and ends the loop.
    """

    def __init__(self, poller: PlatformPoller) -> None:
        metrics = poller.metrics
        super().__init__(
            timedelta(0),
            name=f"poll-{poller.platform}",
            backoff_cap=timedelta(seconds=RETRY_CAP_SECONDS),
            on_run=metrics.loop_run,
        )
        self.poller = poller

    async def run_once(self) -> timedelta:
        polled = await self.poller.run_once()
        if polled < self.poller.adapter.batch_size:
            # Nothing more is due (or a partial batch went back): a claim now would send a
            # near-empty batch (a request for a handful of channels).
            return timedelta(seconds=random.uniform(0.5, 1.0))
        return timedelta(0)


def _deferred(observation: Observation) -> bool:
    """Waiting for the quota's pacing is no error: the platform answered, the channel keeps its
    status and its schedule."""
    return observation.error_kind == "quota_deferred"


def _session_mark(reason: Reason, mark: SessionMark | None) -> SessionMark | None:
    """went_online names its session; went_offline also says how long the stream lasted."""
    if mark is None or reason not in (Reason.WENT_ONLINE, Reason.WENT_OFFLINE):
        return None
    if reason is Reason.WENT_ONLINE:
        return SessionMark(mark.session_id)
    return mark


class Worker:
    """Runs every platform's poller until stopped; errors are logged and retried, never fatal."""

    def __init__(self, pollers: Sequence[PlatformPoller], concurrency: int = 1) -> None:
        self.pollers = list(pollers)
        self.concurrency = concurrency
        self.loops = [PollLoop(poller) for poller in self.pollers]
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()
        for loop in self.loops:
            loop.stop()

    def wake(self, platform: Platform) -> None:
        """A channel of ``platform`` became due now (a push hint): end its loops' pauses."""
        for loop in self.loops:
            if loop.poller.platform is platform:
                loop.wake()

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
