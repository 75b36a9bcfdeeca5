"""`lumio spotify-worker`: polls currently-playing exactly while an account's gate is open.

Connections are shared among replicas as the platform worker shares channels: a batch of due
connections whose stored gate is open is claimed with ``FOR UPDATE SKIP LOCKED`` under a lease
token, the gate is checked against the truth once more (PostgreSQL's live status from the claim
itself, the manual key in Redis), and only then is Spotify asked. Results are stored in one
transaction fenced by the token; the now-playing keys and the ``now_playing_changed`` events
follow the commit. The gates are kept in step by events, a reconcile at start and every minute
(``gate/keeper.py``), and by that check at every claim, so a closed gate stops polling at the
latest when the account is next due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lumio.db.pool import REFUSED_DATA
from lumio.events.publisher import publish
from lumio.events.schemas import StatusEvent
from lumio.kit.clock import Clock, jittered, utc_now
from lumio.kit.loops import LoopService, RunHook
from lumio.kit.settings import Settings
from lumio.kit.storable import MAX_ERROR_CHARS, clean_text
from lumio.spotify import now_playing
from lumio.spotify import repository as repo
from lumio.spotify.gate.keeper import EventListener, GateKeeper, manual_among
from lumio.spotify.gate.rules import reconcile_due
from lumio.spotify.linking.crypto import TokenCipher, TokenUndecryptable, token_context
from lumio.spotify.linking.oauth import InvalidGrant, TokenError
from lumio.spotify.poller.budget import SpotifyBudget
from lumio.spotify.poller.client import (
    Answer,
    Denied,
    Playing,
    RateLimited,
    SpotifyClient,
    Unauthorized,
)
from lumio.spotify.poller.intervals import (
    SpotifyIntervals,
    error_backoff,
    next_poll_delay,
    now_playing_ttl,
    refresh_due,
)
from lumio.spotify.poller.metrics import SpotifyMetrics
from lumio.spotify.poller.normalise import storable
from lumio.spotify.poller.playback import PlaybackState, advance
from lumio.spotify.schemas import (
    ClaimedConnection,
    LinkStatus,
    NowPlaying,
    Play,
    PollOutcome,
    StoredTokens,
)
from lumio.webhooks.outbox import enqueue_outside

log = logging.getLogger(__name__)

# A loop that failed (PostgreSQL or Redis away) tries again at most this much later, so that it
# is back within 10 s of the outage's end (issue 9).
RETRY_CAP_SECONDS = 8.0

# Idle poll loops look again at least this often (an account may come due, a block may end),
# and wait at least this long, so that accounts due close together are claimed as one batch.
IDLE_MAX_SECONDS = 1.0
IDLE_MIN_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class SpotifyWorkerConfig:
    intervals: SpotifyIntervals
    lease: timedelta
    refresh_margin: timedelta
    quota_backoff: timedelta
    reconcile_every: timedelta
    batch_size: int
    concurrency: int
    requests_per_30s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotifyWorkerConfig:
        spotify = settings.spotify
        return cls(
            intervals=SpotifyIntervals.from_settings(settings),
            lease=spotify.lease,
            refresh_margin=spotify.refresh_margin,
            quota_backoff=spotify.quota_backoff,
            reconcile_every=spotify.reconcile_every,
            batch_size=spotify.batch_size,
            concurrency=spotify.concurrency,
            requests_per_30s=spotify.requests_per_30s,
        )


@dataclass(frozen=True, slots=True)
class _Held:
    """No request was sent: the app-wide budget says wait."""

    until: datetime


@dataclass(frozen=True, slots=True)
class _Result:
    account_id: UUID
    # None: the lease was lost on the way (another replica has the account): store nothing.
    outcome: PollOutcome | None
    now: NowPlaying | None = None
    ttl: int = 0
    changed: bool = False
    play: Play | None = None
    # The link needs re-authorisation: the now-playing key goes.
    clear: bool = False


class SpotifyPoller:
    """One replica's claim, check, poll and store of a batch (``run_once``)."""

    def __init__(
        self,
        db: asyncpg.Pool,
        redis: Redis,
        client: SpotifyClient,
        cipher: TokenCipher,
        gatekeeper: GateKeeper,
        config: SpotifyWorkerConfig,
        metrics: SpotifyMetrics,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.redis = redis
        self.client = client
        self.cipher = cipher
        self.gatekeeper = gatekeeper
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.budget = SpotifyBudget(redis, config.requests_per_30s)
        # Monotonic time of the last run_once that did not fail (readiness probes).
        self.last_success: float | None = None

    def last_success_at(self) -> float | None:
        return self.last_success

    async def run_once(self) -> int:
        """Claim and handle one batch; returns how many connections it claimed (0: none due)."""
        claimed = await self._run_once()
        self.last_success = time.monotonic()
        return claimed

    async def _run_once(self) -> int:
        now = self.clock()
        wait = await self.budget.wait_seconds(now)
        self.metrics.blocked.set(wait)
        if wait > 0:
            return 0
        limit = await self.budget.reserve(self.config.batch_size, now)
        if limit == 0:
            return 0
        token = uuid4()
        lease = self.config.lease.total_seconds()
        claimed = await repo.claim(self.db, now, limit, lease, token)
        await self.budget.give_back(limit - len(claimed), now)
        if not claimed:
            return 0
        self.metrics.lag.set(max(0.0, (now - min(c.next_poll_at for c in claimed)).total_seconds()))
        try:
            await self._handle(claimed, token, now)
        except BaseException:
            # Stopping (or a bug): give the batch back at once rather than after the lease.
            with contextlib.suppress(Exception):
                ids = [c.account_id for c in claimed]
                await asyncio.shield(repo.release(self.db, token, ids, now))
            raise
        return len(claimed)

    async def idle_seconds(self) -> float:
        """How long an idle loop may sleep before something is due (capped, never zero)."""
        now = self.clock()
        wait = self.budget.wait_locally(now)
        if wait <= 0:
            due = await repo.next_due(self.db)
            wait = IDLE_MAX_SECONDS if due is None else (due - now).total_seconds()
        return min(IDLE_MAX_SECONDS, max(IDLE_MIN_SECONDS, wait))

    async def _handle(
        self, claimed: Sequence[ClaimedConnection], token: UUID, now: datetime
    ) -> None:
        open_, closed, unknown = await self._check_gates(claimed)
        # Not polled now. A closed gate is not claimed again; should a newer reading keep it open,
        # it is looked at again later, not in a tight loop. Redis unable to say whether manual
        # connect is on: likewise.
        later = now + self.config.intervals.paused
        if closed:
            await repo.release(self.db, token, closed, later)
            await self.gatekeeper.close(closed, now)
            self.metrics.polls.labels("gate_closed").inc(len(closed))
        if unknown:
            await repo.release(self.db, token, unknown, later)
        results = await asyncio.gather(*(self._poll(c, token, now) for c in open_))
        await self._store(results, token)

    async def _check_gates(
        self, claimed: Sequence[ClaimedConnection]
    ) -> tuple[list[ClaimedConnection], list[UUID], list[UUID]]:
        """(gate open, closed, unknown): live somewhere (from the claim) OR the manual key."""
        offline = [c.account_id for c in claimed if not c.online]
        try:
            manual = await manual_among(self.redis, offline)
        except (RedisError, OSError) as exc:
            log.warning("manual keys unreadable (Redis unavailable): %s", exc)
            return [c for c in claimed if c.online], [], offline
        open_ = [c for c in claimed if c.online or c.account_id in manual]
        return open_, [a for a in offline if a not in manual], []

    async def _poll(self, c: ClaimedConnection, token: UUID, now: datetime) -> _Result:
        try:
            access = self.cipher.decrypt(c.access_token, token_context(c.account_id, "access"))
            refresh = self.cipher.decrypt(c.refresh_token, token_context(c.account_id, "refresh"))
        except TokenUndecryptable as exc:
            return self._needs_reauth(c, now, f"the stored tokens cannot be decrypted: {exc}")
        tried_refresh = refresh_due(c.access_expires_at, now, self.config.refresh_margin)
        if tried_refresh:
            got = await self._refresh(c, refresh, token, now)
            if isinstance(got, _Result):
                return got
            # The accounts service failed for now: the old token may still work.
            access = got or access
        answer = await self._ask(access)
        if isinstance(answer, Unauthorized) and not tried_refresh:
            # Expired early or revoked: one refresh, one retry, never a loop.
            got = await self._refresh(c, refresh, token, now)
            if isinstance(got, _Result):
                return got
            if got is not None:
                answer = await self._ask(got)
        return await self._result(c, answer, now)

    async def _ask(self, access: str) -> Answer | _Held:
        now = self.clock()
        # A 429 seen by this process a moment ago holds every request still to go out.
        if self.budget.wait_locally(now) > 0:
            return _Held(datetime.fromtimestamp(self.budget.blocked_until, UTC))
        self.metrics.requests.inc()
        return await self.client.currently_playing(access, now)

    async def _refresh(
        self, c: ClaimedConnection, refresh: str, token: UUID, now: datetime
    ) -> str | _Result | None:
        """The new access token (stored at once), a final result (re-auth, lease lost), or None
        when the accounts service failed for now."""
        self.metrics.requests.inc()
        try:
            grant = await self.client.refresh(refresh, now)
        except InvalidGrant as exc:
            self.metrics.refreshes.labels("invalid_grant").inc()
            return self._needs_reauth(c, now, f"Spotify refused the refresh token: {exc.detail}")
        except TokenError as exc:
            self.metrics.refreshes.labels("failed").inc()
            log.warning("token refresh for %s failed: %s", c.account_id, exc.detail)
            return None
        access_ct, refresh_ct = self.cipher.encrypt_pair(
            c.account_id, grant.access_token, grant.refresh_token or refresh
        )
        # Spotify may omit refresh_token: the old one stays (None keeps the stored value).
        tokens = StoredTokens(
            c.account_id,
            access_ct,
            refresh_ct if grant.refresh_token else None,
            grant.expires_at,
            grant.scope,
        )
        # Stored at once, not with the batch: a rotated refresh token must not be lost.
        if not await repo.save_tokens(self.db, tokens, token):
            return _Result(c.account_id, None)
        self.metrics.refreshes.labels("ok").inc()
        return grant.access_token

    def _needs_reauth(self, c: ClaimedConnection, now: datetime, detail: str) -> _Result:
        log.warning("Spotify link of %s needs re-authorisation: %s", c.account_id, detail)
        self.metrics.polls.labels("needs_reauth").inc()
        outcome = PollOutcome(
            c.account_id,
            now,
            c.playback,
            c.consecutive_errors,
            detail,
            now,
            LinkStatus.NEEDS_REAUTH,
            detail,
        )
        return _Result(c.account_id, outcome, clear=True)

    async def _result(self, c: ClaimedConnection, answer: Answer | _Held, now: datetime) -> _Result:
        if isinstance(answer, Playing):
            return self._observed(c, answer.now, now)
        if isinstance(answer, _Held):
            return self._later(c, answer.until, c.consecutive_errors, None, now)
        if isinstance(answer, RateLimited):
            return await self._rate_limited(c, answer, now)
        errors = c.consecutive_errors + 1
        self.metrics.polls.labels("error").inc()
        if isinstance(answer, Denied):
            # 403: a bad OAuth request; retrying soon will not help.
            return self._later(
                c,
                now + self.config.intervals.backoff_max,
                errors,
                f"forbidden: {answer.message}",
                now,
            )
        detail = answer.message if isinstance(answer, Unauthorized) else answer.detail
        kind = "unauthorized" if isinstance(answer, Unauthorized) else answer.kind
        delay = error_backoff(
            errors, self.config.intervals.playing, self.config.intervals.backoff_max
        )
        # Jittered: accounts linked (or gated open) at one moment must not stay in lock step.
        return self._later(c, now + jittered(delay), errors, f"{kind}: {detail}", now)

    def _observed(self, c: ClaimedConnection, seen: NowPlaying, now: datetime) -> _Result:
        seen = storable(seen)
        step = advance(PlaybackState.from_json(c.playback), seen)
        delay = next_poll_delay(seen, self.config.intervals)
        self.metrics.polls.labels(seen.kind.value).inc()
        # From the answer, not the batch's start: the interval is the player's, and a track's
        # end is computed from progress as of the answer.
        due = seen.observed_at + jittered(delay, 0.05)
        outcome = PollOutcome(c.account_id, due, step.state.to_json(), 0, None, now)
        return _Result(c.account_id, outcome, seen, now_playing_ttl(delay), step.changed, step.play)

    async def _rate_limited(
        self, c: ClaimedConnection, answer: RateLimited, now: datetime
    ) -> _Result:
        wait = timedelta(seconds=answer.retry_after)
        reason = "rate limited"
        if answer.quota_exceeded:
            wait, reason = max(wait, self.config.quota_backoff), "quota exceeded"
        until = now + wait
        await self.budget.block(until, reason)
        self.metrics.polls.labels("rate_limited").inc()
        log.warning("Spotify %s: every request waits %.0f s", reason, wait.total_seconds())
        return self._later(c, until, c.consecutive_errors, reason, now)

    def _later(
        self,
        c: ClaimedConnection,
        at: datetime,
        errors: int,
        last_error: str | None,
        now: datetime,
    ) -> _Result:
        """Nothing new seen: keep the playback, try again at ``at``."""
        outcome = PollOutcome(c.account_id, at, c.playback, errors, last_error, now)
        return _Result(c.account_id, outcome)

    async def _store(self, results: Sequence[_Result], token: UUID) -> None:
        kept, written = await self._store_isolating(results, token)
        await self._announce([r for r in written if r.account_id in kept], kept)

    async def _store_isolating(
        self, results: Sequence[_Result], token: UUID
    ) -> tuple[dict[UUID, bool], list[_Result]]:
        """Store the batch; when PostgreSQL refuses a value, halve it to store every other row
        (a refused row must not fail its batch at every retry) and keep the bad one as an error.
        Returns the leases kept and the results as written (a refused one announces nothing).
        """
        try:
            return await self._write(results, token), list(results)
        except REFUSED_DATA as error:
            if len(results) == 1:
                refused = self._refused(results[0], error)
                return await self._write([refused], token), [refused]
            log.warning("Spotify batch of %d refused (%s): splitting it", len(results), error)
            middle = len(results) // 2
            first, stored = await self._store_isolating(results[:middle], token)
            second, more = await self._store_isolating(results[middle:], token)
            return {**first, **second}, [*stored, *more]

    async def _write(self, results: Sequence[_Result], token: UUID) -> dict[UUID, bool]:
        outcomes = [r.outcome for r in results if r.outcome is not None]
        async with self.db.acquire() as conn, conn.transaction():
            kept = await repo.complete(conn, outcomes, token)
            plays = [(r.account_id, r.play) for r in results if r.play and r.account_id in kept]
            await repo.insert_plays(conn, plays)
        return kept

    def _refused(self, result: _Result, error: Exception) -> _Result:
        """The poll as an error that stores nothing it saw (playback starts afresh next time)."""
        log.error("Spotify %s: the database refused its values: %s", result.account_id, error)
        if result.outcome is None:
            return _Result(result.account_id, None)
        detail = clean_text(f"bad_data: {type(error).__name__}: {error}", MAX_ERROR_CHARS)
        previous = result.outcome
        at = previous.polled_at + self.config.intervals.backoff_max
        outcome = replace(previous, next_poll_at=at, last_error=detail, playback={})
        return _Result(result.account_id, outcome)

    async def _announce(self, results: Sequence[_Result], gate_open: dict[UUID, bool]) -> None:
        """After the commit: the now-playing keys, then the events."""
        store = [
            (r.account_id, r.now, r.ttl)
            for r in results
            if r.now is not None and not r.clear and gate_open[r.account_id]
        ]
        # A gate closed while the poll was in flight: what it saw must not linger.
        drop = [r.account_id for r in results if r.clear or not gate_open[r.account_id]]
        try:
            appeared = await now_playing.store(self.redis, store)
            cleared = await now_playing.clear(self.redis, drop)
        except (RedisError, OSError) as exc:
            log.warning("now playing not stored (Redis unavailable): %s", exc)
            return
        stored = {a for a, _, _ in store}
        changed = [
            r.account_id
            for r in results
            if r.account_id in stored and (r.changed or r.account_id in appeared)
        ]
        events = [now_playing.changed_event(a) for a in (*changed, *cleared)]
        await self._notify_webhooks(events, {r.account_id: r.now for r in results if r.now})
        self.metrics.events.inc(await publish(self.redis, events))

    async def _notify_webhooks(
        self, events: Sequence[StatusEvent], seen: dict[UUID, NowPlaying]
    ) -> None:
        # The keys live in Redis: the outbox rows follow in their own small transaction.
        extras = {a: {"now_playing": orjson.loads(now.to_json())} for a, now in seen.items()}
        try:
            await enqueue_outside(self.db, events, extras)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("now-playing webhooks not queued (PostgreSQL unavailable): %s", exc)


class PollLoop(LoopService):
    """Batch after batch while any is due; idle until the next is due (or a gate opens)."""

    def __init__(self, poller: SpotifyPoller, on_run: RunHook) -> None:
        super().__init__(
            timedelta(seconds=IDLE_MAX_SECONDS),
            name="spotify-poll",
            backoff_cap=timedelta(seconds=RETRY_CAP_SECONDS),
            on_run=on_run,
        )
        self.poller = poller

    async def run_once(self) -> timedelta:
        if await self.poller.run_once():
            return timedelta(0)
        return timedelta(seconds=await self.poller.idle_seconds())


class Reconciler(LoopService):
    """Every gate from the whole truth: once subscribed, every ``reconcile_every``, and after
    each (re)subscription (events published while nobody listened are lost)."""

    def __init__(self, gatekeeper: GateKeeper, metrics: SpotifyMetrics, every: timedelta) -> None:
        # A failed reconcile is retried sooner than the next one, but never more often.
        cap = min(timedelta(seconds=30), every)
        super().__init__(every, name="spotify-reconcile", backoff_cap=cap, on_run=metrics.loop_run)
        self.gatekeeper = gatekeeper
        self.metrics = metrics

    async def run_once(self) -> None:
        changes = await self.gatekeeper.reconcile()
        self.metrics.gates.labels("opened").inc(len(changes.opened))
        self.metrics.gates.labels("closed").inc(len(changes.closed))
        self.metrics.open_gates.set(self.gatekeeper.open_count)


class Evaluator(LoopService):
    """The gates named by events, re-read from the truth as soon as events arrive."""

    def __init__(
        self,
        gatekeeper: GateKeeper,
        listener: EventListener,
        reconciler: Reconciler,
        metrics: SpotifyMetrics,
    ) -> None:
        interval = timedelta(seconds=IDLE_MAX_SECONDS)
        super().__init__(interval, name="spotify-gates", on_run=metrics.loop_run)
        self.gatekeeper = gatekeeper
        self.listener = listener
        self.reconciler = reconciler
        self.metrics = metrics

    async def run_once(self) -> None:
        pending = self.listener.take()
        if not pending:
            return
        try:
            changes = await self.gatekeeper.evaluate(pending)
        except Exception:
            # Those accounts' events are spent: the whole truth puts their gates right.
            self.reconciler.wake()
            raise
        self.metrics.gates.labels("opened").inc(len(changes.opened))
        self.metrics.gates.labels("closed").inc(len(changes.closed))


class SpotifyWorker:
    """The event listener, the reconciler, the gate evaluator and the poll loops of one process."""

    def __init__(
        self,
        db: asyncpg.Pool,
        redis: Redis,
        client: SpotifyClient,
        cipher: TokenCipher,
        config: SpotifyWorkerConfig,
        metrics: SpotifyMetrics | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics or SpotifyMetrics()
        self.gatekeeper = GateKeeper(db, redis, clock, self.wake)
        self.poller = SpotifyPoller(
            db, redis, client, cipher, self.gatekeeper, config, self.metrics, clock
        )
        self.poll_loop = PollLoop(self.poller, self.metrics.loop_run)
        self.reconciler = Reconciler(self.gatekeeper, self.metrics, config.reconcile_every)
        self.listener = EventListener(redis)
        self.evaluator = Evaluator(self.gatekeeper, self.listener, self.reconciler, self.metrics)
        self.listener.on_event = self.evaluator.wake
        self.listener.on_subscribed = self.reconciler.wake

    @property
    def loops(self) -> list[LoopService]:
        return [self.poll_loop, self.reconciler, self.evaluator]

    def stop(self) -> None:
        self.listener.stop()
        for loop in self.loops:
            loop.stop()

    def wake(self) -> None:
        """A gate opened: poll now rather than at the idle loops' next look."""
        self.poll_loop.wake()

    async def tick(self) -> int:
        """One round without waiting (the reconcile when due, pending events, every due batch);
        for tests on a controlled clock."""
        now = self.clock()
        if reconcile_due(self.gatekeeper.last_reconcile, now, self.config.reconcile_every):
            await self.gatekeeper.reconcile()
        pending = self.listener.take()
        if pending:
            await self.gatekeeper.evaluate(pending)
        polled = 0
        while (claimed := await self.poller.run_once()) > 0:
            polled += claimed
        return polled

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.listener.run(), name="spotify-events"),
            asyncio.create_task(self._reconcile_once_subscribed(), name="spotify-reconcile"),
            asyncio.create_task(self.evaluator.start(), name="spotify-gates"),
            *(
                asyncio.create_task(self.poll_loop.start(), name=f"spotify-poll-{n}")
                for n in range(self.config.concurrency)
            ),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            # Every task watches the stop flag; none is cancelled (see EventListener).
            self.stop()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _reconcile_once_subscribed(self) -> None:
        # Once subscribed, so that no event can fall between the reading and the listening.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.subscribed.wait(), 2.0)
        await self.reconciler.start()
