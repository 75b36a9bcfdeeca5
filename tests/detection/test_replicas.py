"""Three real `lumio worker` processes sharing 2,000 Kick channels (DESIGN §4, §5 and §9).

The fake Kick runs in this process behind a small ASGI wrapper. Each replica is pointed at its
own path prefix (``/r1``, ``/r2`` ...), so the wrapper knows which replica sent a request; it strips
the prefix, records which channel ids each ``GET /public/v1/channels`` asked for and when it was
in flight, and can hang one replica's requests (to kill it mid-batch) without slowing the others.

One test, in phases, because every phase needs the processes of the one before:

1. steady state: every channel is polled within one interval (+ slack), the replicas share the
   work, no channel id is ever in two requests in flight at once;
2. SIGKILL of a replica with a batch in flight: its channels are polled again within
   lease + interval, and the other channels keep their schedule;
3. a replacement worker, then the two survivors stopped with SIGTERM (they exit 0): the new worker
   alone polls the live channels without announcing them again;
4. over the whole run: exactly one ``went_online`` per channel that went live, none for the
   others, no ``went_offline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs
from uuid import UUID

import asyncpg
import orjson
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lumio.dev.fakes.kick import CHANNELS_PATH, FakeKickState
from lumio.dev.fakes.kick import create_app as kick_app
from lumio.dev.fakes.server import FakeServer
from lumio.events.schemas import CHANNEL_PATTERN

LUMIO = Path(sys.executable).parent / "lumio"

CHANNELS = 2_000
FIRST_ID = 1_000_000
LIVE_AT_START = 20
LIVE_LATER = 20

OFFLINE_INTERVAL = 3.0
LIVE_INTERVAL = 2.0
LEASE = 4.0
# The worker spreads next polls by ±10 %, and an idle loop sleeps 0.5 to 1 s before it claims
# again: a channel may wait that long past its due time, plus a batch's own few milliseconds.
JITTER = 1.1
SLACK = 1.5
POLL_BOUND = OFFLINE_INTERVAL * JITTER + SLACK
TAKEOVER_BOUND = LEASE + OFFLINE_INTERVAL * JITTER + SLACK

STEADY_SECONDS = 8.0
ALONE_SECONDS = 5.0


# --- the fake's instrumentation --------------------------------------------------------------


@dataclass
class Window:
    """One channels request as the fake saw it: who sent it, which ids, when it was in flight."""

    replica: int
    ids: tuple[str, ...]
    start: float
    end: float | None = None


class Recorder:
    """ASGI wrapper: ``/r{n}/...`` is replica n's view of the fake; records channels requests."""

    PREFIX = re.compile(r"^/r(\d+)(/.*)$")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.windows: list[Window] = []
        self.hanging: set[int] = set()

    def snapshot(self) -> list[Window]:
        with self.lock:
            return [Window(w.replica, w.ids, w.start, w.end) for w in self.windows]

    def in_flight(self, replica: int) -> list[Window]:
        return [w for w in self.snapshot() if w.replica == replica and w.end is None]

    def end_open(self, replica: int, at: float) -> None:
        """The replica died: its open requests are over (nobody waits for their answers)."""
        with self.lock:
            for window in self.windows:
                if window.replica == replica and window.end is None:
                    window.end = at

    def hang(self, replica: int, on: bool = True) -> None:
        with self.lock:
            (self.hanging.add if on else self.hanging.discard)(replica)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = self.PREFIX.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        replica, path = int(match[1]), match[2]
        scope = {**scope, "path": path, "raw_path": path.encode()}
        if path != CHANNELS_PATH:
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope["query_string"].decode())
        window = Window(replica, tuple(query.get("broadcaster_user_id", ())), time.monotonic())
        with self.lock:
            self.windows.append(window)
            hanging = replica in self.hanging
        try:
            if hanging:
                await _hang_until_disconnect(receive)
                await _send_empty(send, 504)
            else:
                await self.app(scope, receive, send)
        finally:
            with self.lock:
                if window.end is None:
                    window.end = time.monotonic()


async def _hang_until_disconnect(receive: Receive, limit: float = 30.0) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), limit)


async def _send_empty(send: Send, status: int) -> None:
    start: Message = {"type": "http.response.start", "status": status, "headers": []}
    with contextlib.suppress(OSError, RuntimeError):
        await send(start)
        await send({"type": "http.response.body", "body": b""})


# --- the worker processes --------------------------------------------------------------------


@dataclass
class Replica:
    number: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")


@dataclass
class Replicas:
    """`lumio worker` processes; every one is stopped at teardown (SIGTERM, then SIGKILL)."""

    base_url: str
    database_url: str
    redis_url: str
    state: FakeKickState
    log_dir: Path
    started: dict[int, Replica] = field(default_factory=dict)

    def env(self, number: int) -> dict[str, str]:
        # Nothing of the caller's LUMIO_* (another platform's credentials, say) leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LUMIO_")}
        base = f"{self.base_url}/r{number}"
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            LUMIO_KICK_CLIENT_ID=self.state.client_id,
            LUMIO_KICK_CLIENT_SECRET=self.state.client_secret,
            LUMIO_KICK_API_BASE=base,
            LUMIO_KICK_ID_BASE=base,
            LUMIO_POLL_OFFLINE_SECONDS=str(OFFLINE_INTERVAL),
            LUMIO_POLL_LIVE_SECONDS=str(LIVE_INTERVAL),
            LUMIO_POLL_SETTLING_SECONDS=str(LIVE_INTERVAL),
            LUMIO_LEASE_SECONDS=str(LEASE),
            # Below the lease: a hung request never outlives its batch's lease.
            LUMIO_PLATFORM_TIMEOUT_SECONDS="3.5",
            LUMIO_WORKER_CONCURRENCY="2",
            # Several workers on one machine: each takes a free probe port.
            LUMIO_WORKER_METRICS_PORT="0",
        )
        return env

    def start(self, number: int) -> Replica:
        log_path = self.log_dir / f"worker-{number}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            [str(LUMIO), "worker"],
            env=self.env(number),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        replica = Replica(number, process, log_path, log)
        self.started[number] = replica
        return replica

    def stop_all(self) -> None:
        for replica in self.started.values():
            if replica.process.poll() is None:
                replica.process.terminate()
        for replica in self.started.values():
            try:
                replica.process.wait(10)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
            replica.log.close()


@pytest.fixture
def recorded_kick() -> Iterator[tuple[FakeKickState, Recorder, str]]:
    state = FakeKickState()
    recorder = Recorder(kick_app(state))
    with FakeServer(recorder) as url:
        yield state, recorder, url


@pytest.fixture
async def replicas(
    recorded_kick: tuple[FakeKickState, Recorder, str],
    database_url: str,
    redis_url: str,
    tmp_path: Path,
) -> AsyncIterator[Replicas]:
    state, _, url = recorded_kick
    group = Replicas(url, database_url, redis_url, state, tmp_path)
    try:
        yield group
    finally:
        await asyncio.to_thread(group.stop_all)


# --- seeding and event capture ---------------------------------------------------------------

SEED = """
WITH seed AS (
    SELECT g, gen_random_uuid() AS account_id FROM generate_series(0, $1 - 1) AS g
), accounts_added AS (
    INSERT INTO accounts (id, name) SELECT account_id, 'Replica ' || g FROM seed
)
INSERT INTO platform_channels (account_id, platform, channel_id, display_name, next_poll_at)
SELECT account_id, 'kick', ($2 + g)::text, 'replica' || g, now() FROM seed
RETURNING channel_id, account_id
"""


async def seed(db: asyncpg.Pool, state: FakeKickState) -> dict[str, UUID]:
    """2,000 accounts with a linked Kick channel each, set-based; the same channels on the fake."""
    rows = await db.fetch(SEED, CHANNELS, FIRST_ID)
    for n in range(CHANNELS):
        state.add_channel(f"replica{n}", channel_id=str(FIRST_ID + n), title="Chatting")
    return {row["channel_id"]: row["account_id"] for row in rows}


async def collect(pubsub: PubSub, accounts: set[str], sink: list[dict[str, object]]) -> None:
    """Every status event of our accounts (other test runs may share this Redis)."""
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if message is None or message["type"] != "pmessage":
            continue
        event = orjson.loads(message["data"])
        if event.get("account_id") in accounts:
            sink.append(event)


# --- checks over the recorded requests -------------------------------------------------------


def polls_by_id(windows: list[Window]) -> dict[str, list[float]]:
    starts: dict[str, list[float]] = defaultdict(list)
    for window in windows:
        for cid in window.ids:
            starts[cid].append(window.start)
    for times in starts.values():
        times.sort()
    return starts


def longest_waits(
    windows: list[Window], ids: list[str], since: float, until: float
) -> list[tuple[float, str]]:
    """Per channel, the longest stretch inside [since, until] with no poll starting, longest first."""
    starts = polls_by_id(windows)
    waits = []
    for cid in ids:
        times = [since, *(t for t in starts.get(cid, ()) if since < t < until), until]
        waits.append((max(b - a for a, b in itertools.pairwise(times)), cid))
    return sorted(waits, reverse=True)


def overlaps(windows: list[Window]) -> list[tuple[str, Window, Window]]:
    """Channel ids that were in two requests in flight at the same time."""
    by_id: dict[str, list[Window]] = defaultdict(list)
    for window in windows:
        for cid in window.ids:
            by_id[cid].append(window)
    found = []
    for cid, spans in by_id.items():
        spans.sort(key=lambda w: w.start)
        for earlier, later in itertools.pairwise(spans):
            if earlier.end is None or later.start < earlier.end:
                found.append((cid, earlier, later))
    return found


async def wait_until(condition: str, check: Callable[[], object], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {condition}")


def assert_running(group: Replicas, *numbers: int) -> None:
    for number in numbers:
        replica = group.started[number]
        assert replica.process.poll() is None, (
            f"worker {number} exited with {replica.process.returncode}:\n{replica.log_text()[-3000:]}"
        )


# --- the test ----------------------------------------------------------------------------------


async def test_three_replicas_share_survive_a_kill_and_announce_once(
    db: asyncpg.Pool,
    redis: Redis,
    recorded_kick: tuple[FakeKickState, Recorder, str],
    replicas: Replicas,
) -> None:
    state, recorder, _ = recorded_kick
    await redis.delete("lumio:budget:kick")
    account_of = await seed(db, state)
    ids = sorted(account_of)
    live_first, live_later = ids[:LIVE_AT_START], ids[LIVE_AT_START : LIVE_AT_START + LIVE_LATER]
    for cid in live_first:
        state.set_live(cid, viewers=5)

    events: list[dict[str, object]] = []
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(CHANNEL_PATTERN)
    listener = asyncio.create_task(collect(pubsub, {str(a) for a in account_of.values()}, events))
    try:
        # --- start: three replicas, every channel polled once -------------------------------------
        for number in (1, 2, 3):
            replicas.start(number)

        async def all_polled() -> bool:
            assert_running(replicas, 1, 2, 3)
            missing: int = await db.fetchval(
                "SELECT count(*) FROM platform_channels WHERE last_polled_at IS NULL"
            )
            return missing == 0

        await wait_until("every channel's first poll", all_polled, 30)

        # --- 1. steady state ----------------------------------------------------------------------
        for cid in live_later:
            state.set_live(cid, viewers=7)
        steady_from = time.monotonic()
        await asyncio.sleep(STEADY_SECONDS)
        steady_until = time.monotonic()
        assert_running(replicas, 1, 2, 3)

        windows = recorder.snapshot()
        waits = longest_waits(windows, ids, steady_from, steady_until)
        assert waits[0][0] <= POLL_BOUND, f"channels waited too long (s, id): {waits[:5]}"
        stale: float = await db.fetchval(
            "SELECT extract(epoch FROM now() - min(last_polled_at)) FROM platform_channels"
        )
        assert stale <= POLL_BOUND, f"a channel's last_polled_at is {stale:.1f} s old"
        polled = Counter(
            w.replica for w in windows if steady_from <= w.start <= steady_until for _ in w.ids
        )
        total = sum(polled.values())
        for number in (1, 2, 3):
            assert polled[number] >= total * 0.05, f"replica {number} did little: {polled}"

        # --- 2. SIGKILL with a batch in flight ---------------------------------------------------
        victim = replicas.started[1]
        recorder.hang(1)
        await wait_until("a hung request of worker 1", lambda: recorder.in_flight(1), 10)
        in_flight = recorder.in_flight(1)
        victim.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.to_thread(victim.process.wait, 10)
        recorder.end_open(1, killed_at)
        recorder.hang(1, on=False)
        orphans = sorted({cid for window in in_flight for cid in window.ids})
        leased: int = await db.fetchval(
            "SELECT count(*) FROM platform_channels WHERE channel_id = ANY($1) AND lease_token IS NOT NULL",
            orphans,
        )
        assert leased == len(orphans), "the killed worker's batch should still be leased"

        await asyncio.sleep(TAKEOVER_BOUND + 0.5)
        assert_running(replicas, 2, 3)
        windows = recorder.snapshot()
        starts = polls_by_id([w for w in windows if w.replica != 1])
        for cid in orphans:
            after = [t for t in starts.get(cid, ()) if t > killed_at]
            assert after, f"channel {cid} of the killed worker was never polled again"
            assert after[0] - killed_at <= TAKEOVER_BOUND, (
                f"channel {cid} was polled again {after[0] - killed_at:.1f} s after the kill"
            )
        # Every other channel kept (about) its schedule meanwhile; none waited beyond the lease.
        waits = longest_waits(windows, ids, killed_at, time.monotonic())
        assert waits[0][0] <= TAKEOVER_BOUND, f"channels waited too long (s, id): {waits[:5]}"
        unleased: int = await db.fetchval(
            "SELECT count(*) FROM platform_channels WHERE channel_id = ANY($1)"
            " AND lease_token IS NULL AND last_polled_at > now() - make_interval(secs => $2)",
            orphans,
            TAKEOVER_BOUND + 0.5,
        )
        assert unleased == len(orphans), "the killed worker's channels should be stored again"

        # --- 3. a new worker; the survivors stop; the new one alone sees the live channels ---------
        replicas.start(4)
        await wait_until(
            "worker 4's first requests",
            lambda: any(w.replica == 4 for w in recorder.snapshot()),
            20,
        )
        for number in (2, 3):
            replicas.started[number].process.terminate()
        for number in (2, 3):
            code = await asyncio.to_thread(replicas.started[number].process.wait, 10)
            assert code == 0, replicas.started[number].log_text()[-3000:]
        alone_from = time.monotonic()
        await asyncio.sleep(ALONE_SECONDS)
        assert_running(replicas, 4)
        alone = polls_by_id(
            [w for w in recorder.snapshot() if w.replica == 4 and w.start > alone_from]
        )
        unseen = [cid for cid in live_first + live_later if cid not in alone]
        assert not unseen, f"worker 4 did not poll live channels {unseen}"
        await asyncio.sleep(0.5)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await pubsub.aclose()  # type: ignore[no-untyped-call]

    # --- 4. over the whole run ---------------------------------------------------------------------
    clashes = overlaps(recorder.snapshot())
    assert not clashes, f"{len(clashes)} channel polls overlapped, e.g. {clashes[:3]}"

    went_online = Counter(str(e["account_id"]) for e in events if e["reason"] == "went_online")
    expected = {str(account_of[cid]): 1 for cid in live_first + live_later}
    assert dict(went_online) == expected
    # Nothing else either: no went_offline, and no stream_updated from a replica (or the restarted
    # worker) that took a live channel over, since title and viewers never changed.
    assert Counter(e["reason"] for e in events) == {"went_online": len(expected)}
    assert all(e["platform"] == "kick" and e["is_online"] is True for e in events)

    online = {
        r["account_id"]
        for r in await db.fetch("SELECT account_id FROM channel_status WHERE is_online")
    }
    assert online == {account_of[cid] for cid in live_first + live_later}
    offline: int = await db.fetchval("SELECT count(*) FROM channel_status WHERE NOT is_online")
    assert offline == CHANNELS - LIVE_AT_START - LIVE_LATER

    for number in (2, 3, 4):
        text = replicas.started[number].log_text()
        assert "Traceback" not in text, f"worker {number} logged an error:\n{text[-3000:]}"
