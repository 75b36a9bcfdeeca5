"""Replicas share the accounts through leases in PostgreSQL (DESIGN §4): never two at once on
one account, and a killed replica's accounts come back when its lease expires."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg
from redis.asyncio import Redis

from lumio.dev.fakes.spotify import (
    CURRENTLY_PLAYING,
    CURRENTLY_PLAYING_PATH,
    FakeSpotifyState,
)
from lumio.kit.settings import Settings
from tests.conftest import Factory
from tests.spotify.conftest import INTERVAL, TOKEN_KEY, Linked, Workers, quick_link, wait_until


async def open_gates(
    db: asyncpg.Pool,
    fake: FakeSpotifyState,
    factory: Factory,
    settings: Settings,
    redis: Redis,
    count: int,
) -> list[Linked]:
    """``count`` linked accounts with manual connect on (so each link opens its gate)."""
    linked = [await quick_link(db, fake, factory, settings, redis) for _ in range(count)]
    fake.reset_stats()
    return linked


async def test_two_replicas_poll_each_account_once_per_interval(
    fake: FakeSpotifyState,
    factory: Factory,
    workers: Workers,
    redis: Redis,
    db: asyncpg.Pool,
    spotify_settings: Settings,
) -> None:
    linked = await open_gates(db, fake, factory, spotify_settings, redis, 8)
    await asyncio.gather(workers.start("replica-1"), workers.start("replica-2"))
    await asyncio.sleep(6 * INTERVAL)

    times: dict[str | None, list[float]] = defaultdict(list)
    for request in fake.log():
        times[request.user_id].append(request.at)
    assert set(times) == {link.user_id for link in linked}
    for user, seen in times.items():
        assert len(seen) >= 3, user
        gaps = [b - a for a, b in itertools.pairwise(seen)]
        # Never two replicas on one account at once (they would poll it back to back).
        assert min(gaps) >= 0.5 * INTERVAL, (user, gaps)
    assert set(fake.peak_per_user().values()) == {1}
    # Both replicas did part of the work.
    assert {r.agent for r in fake.log()} == {"replica-1", "replica-2"}


def worker_process(settings: Settings, url: str, log: Path) -> subprocess.Popen[bytes]:
    """`lumio spotify-worker` as a process of its own, on the test database and the fake."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.db.url or "",
        "REDIS_URL": settings.redis.url or "",
        "LUMIO_SPOTIFY_CLIENT_ID": settings.spotify.client_id,
        "LUMIO_SPOTIFY_CLIENT_SECRET": settings.spotify.client_secret,
        "LUMIO_SPOTIFY_ACCOUNTS_BASE": url,
        "LUMIO_SPOTIFY_API_BASE": url,
        "LUMIO_SPOTIFY_TOKEN_KEY": TOKEN_KEY,
        "LUMIO_SPOTIFY_POLL_PLAYING_SECONDS": str(INTERVAL),
        "LUMIO_SPOTIFY_LEASE_SECONDS": "2",
        "LUMIO_PLATFORM_TIMEOUT_SECONDS": "30",
        # Several workers on one machine: each takes a free probe port.
        "LUMIO_SPOTIFY_WORKER_METRICS_PORT": "0",
    }
    lumio = Path(sys.executable).parent / "lumio"
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(lumio), "spotify-worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_a_killed_replica_s_accounts_are_taken_after_its_lease_expires(
    fake: FakeSpotifyState,
    fake_server: tuple[FakeSpotifyState, str],
    factory: Factory,
    workers: Workers,
    redis: Redis,
    db: asyncpg.Pool,
    spotify_settings: Settings,
    tmp_path: Path,
) -> None:
    # The first replica's requests hang until it dies: it is killed holding every lease.
    fake.hang_seconds = 60
    fake.fail_next(6, "timeout", CURRENTLY_PLAYING_PATH)
    doomed = worker_process(spotify_settings, fake_server[1], tmp_path / "worker.log")
    try:
        # Linked while it starts; each link opens its gate (manual connect is on).
        linked = await open_gates(db, fake, factory, spotify_settings, redis, 6)

        def all_hanging() -> bool:
            in_flight = fake.stats()["in_flight"].get(CURRENTLY_PLAYING, 0)
            return in_flight == len(linked) or doomed.poll() is not None

        await wait_until(all_hanging, 20)
        assert doomed.poll() is None, (tmp_path / "worker.log").read_text()
        rows = await db.fetch("SELECT account_id, leased_until FROM spotify_connections")
        leases: dict[UUID, datetime] = {r["account_id"]: r["leased_until"] for r in rows}
        doomed.send_signal(signal.SIGKILL)
    finally:
        doomed.kill()
        doomed.wait(10)
    fake.clear_failures()
    assert all(leases[link.account_id] is not None for link in linked)
    # The dead replica's hanging requests end with its connections: forget them.
    await wait_until(lambda: not fake.stats()["in_flight"], 5)
    fake.reset_stats()

    await workers.start("survivor")
    users = {link.user_id: link.account_id for link in linked}
    await wait_until(lambda: {r.user_id for r in fake.log()} == set(users), within=8)
    for request in fake.log():
        assert request.agent == "survivor"
    for user, account_id in users.items():
        first = min(r.at for r in fake.log() if r.user_id == user)
        lease_end = leases[account_id].timestamp()
        # Not before the dead replica's lease ran out, and soon after it.
        assert lease_end - 0.05 <= first <= lease_end + 1.5, first - lease_end
