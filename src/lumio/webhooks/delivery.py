"""The delivery loop (runs inside `lumio worker`): turns outbox rows into deliveries, claims due
ones with ``FOR UPDATE SKIP LOCKED`` and a lease (up to ``batch_size`` on their way at once,
``concurrency`` requests in flight), sends each on its own, and writes the outcomes back in
batches as they end.

2xx is done; anything else is retried after 5 s, 30 s, 2 min, 10 min, 1 h, then doubling up to
24 h (each ±10 % jitter); ``410 Gone`` disables the endpoint, and so does failing for 3 days.
A process killed between claim and write-back leaves its deliveries leased: they come due again
when the lease ends and go out with the same webhook-id (at least once; receivers dedupe).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
import httpx

from lumio.kit.clock import Clock, jittered, utc_now
from lumio.kit.crypto import TokenCipher, TokenUndecryptable, webhook_secret_context
from lumio.kit.http import HttpError, HttpPool
from lumio.kit.loops import LoopService
from lumio.kit.settings import WebhookSettings
from lumio.webhooks import discord, outbox, repository, signing, ssrf
from lumio.webhooks.schemas import Claimed, DeliveryState, Kind, Outcome

log = logging.getLogger(__name__)

RETRY_SCHEDULE = tuple(
    timedelta(seconds=s) for s in (5, 30, 120, 600, 3600, 7200, 14400, 28800, 57600, 86400)
)
LOG_BYTES = 1024
USER_AGENT = "Lumio-Webhooks/1"
PURGE_EVERY = timedelta(minutes=10)
# Keep-alive pools kept open (one per origin and checked address).
MAX_POOLS = 256
# Outbox rows (status transactions) turned into deliveries per round.
DISPATCH_ROWS = 500


def retry_delay(attempts: int) -> timedelta:
    return jittered(RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1])


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    latency_ms: int


class Sender:
    """One attempt over HTTP: to the checked address, no redirects, capped, timed out.

    Sent with the lean client of the hot paths (``kit.http``; httpx cost 2-5 ms of CPU per
    delivery here, most of it in its pool's bookkeeping): a keep-alive pool per origin and
    checked address, the least recently used closed beyond ``MAX_POOLS``."""

    def __init__(self, db: asyncpg.Pool, settings: WebhookSettings):
        self.db = db
        self.settings = settings
        self._pools: OrderedDict[tuple[str, str | None], HttpPool] = OrderedDict()

    async def send(self, claimed: Claimed, now: datetime) -> Outcome:
        try:
            target = await ssrf.check(claimed.url, self.settings.allow_private)
        except ssrf.UnsafeUrl as exc:
            return Outcome(claimed.id, claimed.endpoint_id, False, now, error=exc.detail)
        if claimed.kind == Kind.DISCORD:
            return await discord.send(self, claimed, target, now)
        body = claimed.body.encode()
        headers = signing.headers(claimed.secrets, str(claimed.id), int(now.timestamp()), body)
        headers["content-type"] = "application/json"
        return await self.attempt(claimed, now, target, "POST", target.url, body, headers)

    async def attempt(
        self,
        claimed: Claimed,
        now: datetime,
        target: ssrf.Target,
        method: str,
        url: httpx.URL,
        body: bytes,
        headers: dict[str, str],
    ) -> Outcome:
        outcome = Outcome(claimed.id, claimed.endpoint_id, False, now)
        try:
            answer = await self.request(target, method, url, body, headers)
        except (HttpError, OSError) as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"[:500]
            return outcome
        outcome.status, outcome.latency_ms = answer.status, answer.latency_ms
        outcome.response_body = answer.body[:LOG_BYTES].decode("utf-8", "replace")[:LOG_BYTES]
        outcome.ok = 200 <= answer.status < 300
        outcome.gone = answer.status == 410
        return outcome

    async def request(
        self,
        target: ssrf.Target,
        method: str,
        url: httpx.URL,
        body: bytes,
        headers: dict[str, str],
    ) -> Answer:
        started = time.monotonic()
        sent = headers | {"user-agent": USER_AGENT}
        pool = await self._pool(url, target.address)
        response = await pool.request(method, url.raw_path.decode("ascii"), sent, body)
        latency = int((time.monotonic() - started) * 1000)
        return Answer(response.status_code, response.content, latency)

    async def _pool(self, url: httpx.URL, address: str | None) -> HttpPool:
        key = (f"{url.scheme}://{url.netloc.decode('ascii')}", address)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = HttpPool(
                key[0],
                self.settings.concurrency,
                self.settings.timeout.total_seconds(),
                connect_to=address,
                max_body_bytes=self.settings.max_response_bytes,
                truncate_body=True,
            )
            if len(self._pools) > MAX_POOLS:
                await self._pools.popitem(last=False)[1].aclose()
        self._pools.move_to_end(key)
        return pool

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()


class DeliveryLoop(LoopService):
    name = "webhook-delivery"

    def __init__(
        self,
        db: asyncpg.Pool,
        cipher: TokenCipher,
        settings: WebhookSettings,
        clock: Clock = utc_now,
    ) -> None:
        # The interval is the lease: a round longer than that may see its deliveries sent twice.
        super().__init__(settings.lease)
        self.db = db
        self.cipher = cipher
        self.settings = settings
        self.clock = clock
        self.sender = Sender(db, settings)
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._purged_at: datetime | None = None
        # Claimed deliveries being sent, until their outcome is written back.
        self._sending: dict[asyncio.Task[Outcome], Claimed] = {}

    async def start(self, loops: int | None = None) -> None:
        await super().start(loops)
        # What is still on its way when the loop ends is waited for (at most the send timeout)
        # and written back, so a stopping worker leaves no lease to run out.
        await self._settle(wait=True)
        await self.sender.aclose()

    async def run_once(self) -> timedelta:
        await self._purge(self.clock())
        await outbox.dispatch(self.db, DISPATCH_ROWS)
        await self._settle()
        room = self.settings.batch_size - len(self._sending)
        if room <= 0:
            return self.settings.poll
        rows = await repository.claim(self.db, self.clock(), room, self.settings.lease)
        for row in rows:
            self._launch(self._claimed(row))
        # More may be due at once; otherwise a send that ends wakes the loop to write it back
        # (and to claim the next of its channel, which waited for it).
        return timedelta(0) if len(rows) == room else self.settings.poll

    def _launch(self, claimed: Claimed) -> None:
        # Sends run on their own, not in rounds: one slow receiver (up to the timeout) holds
        # back only its own channel's next deliveries, never the other endpoints'.
        task = asyncio.create_task(self._send(claimed))
        self._sending[task] = claimed
        task.add_done_callback(lambda _: self.wake())

    async def _settle(self, wait: bool = False) -> None:
        """Write back the outcomes of the sends that have ended (``wait``: of all of them)."""
        if wait and self._sending:
            await asyncio.wait(self._sending)
        done = [task for task in self._sending if task.done()]
        if not done:
            return
        await self._record([self._sending[t] for t in done], [t.result() for t in done])
        for task in done:
            del self._sending[task]

    def _claimed(self, row: asyncpg.Record) -> Claimed:
        context = webhook_secret_context(row["endpoint_id"])
        sealed = [s for s in (row["secret"], row["previous_secret"]) if s is not None]
        try:
            secrets = tuple(self.cipher.decrypt(s, context) for s in sealed)
        except TokenUndecryptable:
            secrets = ()
        return Claimed(
            id=row["id"],
            endpoint_id=row["endpoint_id"],
            account_id=row["account_id"],
            channel_key=row["channel_key"],
            event_type=row["event_type"],
            body=row["body"],
            attempts=row["attempts"],
            kind=row["kind"],
            url=row["url"],
            template=row["template"],
            secrets=secrets,
            failing_since=row["failing_since"],
        )

    async def _send(self, claimed: Claimed) -> Outcome:
        async with self._limit:
            now = self.clock()
            if not claimed.secrets and claimed.kind == Kind.STANDARD:
                error = "the signing secret cannot be decrypted (was the key rotated away?)"
                return Outcome(claimed.id, claimed.endpoint_id, False, now, error=error)
            try:
                return await self.sender.send(claimed, now)
            except Exception as exc:  # one bad delivery must not fail the batch
                log.exception("webhook delivery %s failed", claimed.id)
                return Outcome(claimed.id, claimed.endpoint_id, False, now, error=repr(exc))

    async def _record(self, claimed: Sequence[Claimed], outcomes: Sequence[Outcome]) -> None:
        rows = [_next_state(c, o) for c, o in zip(claimed, outcomes, strict=True)]
        health = self._health(claimed, outcomes)
        disabled = [endpoint for endpoint, *_, reason in health if reason is not None]
        async with self.db.acquire() as conn, conn.transaction():
            await repository.finish(conn, rows)
            await repository.record_health(conn, health)
            await repository.fail_pending(conn, disabled, self.clock())
        for endpoint in disabled:
            log.warning("webhook endpoint %s disabled", endpoint)

    def _health(
        self, claimed: Sequence[Claimed], outcomes: Sequence[Outcome]
    ) -> list[tuple[UUID, datetime, str, datetime | None, str | None]]:
        latest: dict[UUID, tuple[UUID, datetime, str, datetime | None, str | None]] = {}
        for c, o in zip(claimed, outcomes, strict=True):
            since = None if o.ok else (c.failing_since or o.at)
            reason = "the receiver answered 410 Gone" if o.gone else None
            if since is not None and o.at - since >= self.settings.disable_after:
                reason = f"failing since {since.isoformat()}"
            status = "delivered" if o.ok else "failing"
            latest[c.endpoint_id] = (c.endpoint_id, o.at, status, since, reason)
        return list(latest.values())

    async def _purge(self, now: datetime) -> None:
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = now
        await repository.purge(self.db, now - self.settings.log_retention)


def _next_state(claimed: Claimed, outcome: Outcome) -> tuple[Outcome, str, datetime | None]:
    if outcome.ok:
        return outcome, DeliveryState.DELIVERED.value, None
    if outcome.gone:
        return outcome, DeliveryState.FAILED.value, None
    if outcome.retry_after is not None:
        return (
            outcome,
            DeliveryState.PENDING.value,
            outcome.at + timedelta(seconds=outcome.retry_after),
        )
    return outcome, DeliveryState.PENDING.value, outcome.at + retry_delay(claimed.attempts)
