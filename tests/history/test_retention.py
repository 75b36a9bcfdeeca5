"""Retention: old raw samples become 5-minute rows (exact min/max, time-weighted mean)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from lumio.history.retention import HistoryRetention, bucket_floor
from tests.conftest import Factory
from tests.history.seed import seed_session

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def retention(db: asyncpg.Pool, keep_days: float = 365, batch: int = 1) -> HistoryRetention:
    # No pause between runs: start(loops=n) runs them back to back.
    return HistoryRetention(db, 14, keep_days, batch, timedelta(0), clock=lambda: NOW)


async def irregular_session(db: asyncpg.Pool, account: UUID, start: datetime, n: int) -> UUID:
    """Samples at uneven gaps (10 to 90 s), as polls under backoff would leave them."""
    rng = random.Random(n)
    session_id = await seed_session(db, account, "twitch", start, [])
    at = start
    for _ in range(n):
        await db.execute(
            "INSERT INTO viewer_samples VALUES ($1, $2, $3)", session_id, at, rng.randint(0, 500)
        )
        at += timedelta(seconds=rng.randint(10, 90))
    await db.execute(
        "UPDATE stream_sessions SET ended_at = $2, last_seen_at = $2 WHERE id = $1", session_id, at
    )
    return session_id


async def raw(db: asyncpg.Pool, session_id: UUID) -> list[tuple[datetime, int]]:
    rows = await db.fetch(
        "SELECT observed_at, viewers FROM viewer_samples WHERE session_id = $1 ORDER BY 1",
        session_id,
    )
    return [(r[0], r[1]) for r in rows]


def weighted(points: list[tuple[datetime, int]], end: datetime) -> tuple[float, float]:
    """(sum of viewers x seconds held, seconds): each sample holds until the next one."""
    total = seconds = 0.0
    for (at, v), (following, _) in zip(points, [*points[1:], (end, 0)], strict=True):
        held = (following - at).total_seconds()
        total, seconds = total + v * held, seconds + held
    return total, seconds


async def test_old_samples_are_downsampled_exactly(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    old = await irregular_session(db, account, NOW - timedelta(days=20), 300)
    # Straddles the cutoff: only its part before the window is downsampled.
    cutoff = bucket_floor(NOW - timedelta(days=14))
    straddling = await irregular_session(db, account, cutoff - timedelta(hours=1), 200)
    recent = await seed_session(db, account, "kick", NOW - timedelta(days=2), [3, 4, 5])
    old_points, straddling_points = await raw(db, old), await raw(db, straddling)
    recent_points = await raw(db, recent)
    end = await db.fetchval("SELECT ended_at FROM stream_sessions WHERE id = $1", old)

    service = retention(db)
    await service.start(loops=5)

    assert await raw(db, old) == []
    assert await raw(db, recent) == recent_points
    assert await raw(db, straddling) == [p for p in straddling_points if p[0] >= cutoff]
    rows = await db.fetch(
        "SELECT * FROM viewer_samples_5m WHERE session_id = $1 ORDER BY bucket", old
    )
    for row in rows:
        inside = [v for at, v in old_points if bucket_floor(at) == row["bucket"]]
        assert (row["min_viewers"], row["max_viewers"]) == (min(inside), max(inside))
        assert row["samples"] == len(inside)
    assert sum(r["samples"] for r in rows) == len(old_points)
    total, seconds = weighted(old_points, end)
    kept_total = sum(r["avg_viewers"] * r["seconds"] for r in rows)
    assert sum(r["seconds"] for r in rows) == seconds
    assert abs(kept_total / seconds - total / seconds) < 1e-9
    # The straddling session's buckets stop before the window.
    last = await db.fetchval(
        "SELECT max(bucket) FROM viewer_samples_5m WHERE session_id = $1", straddling
    )
    assert last < cutoff

    # A second pass changes nothing.
    before = await db.fetch("SELECT * FROM viewer_samples_5m ORDER BY session_id, bucket")
    await service.start(loops=2)
    assert await db.fetch("SELECT * FROM viewer_samples_5m ORDER BY session_id, bucket") == before


async def test_old_sessions_go_after_history_days(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    ancient = await seed_session(db, account, "kick", NOW - timedelta(days=40), [1, 2])
    kept = await seed_session(db, account, "kick", NOW - timedelta(days=10), [1, 2])
    await retention(db, keep_days=0).start(loops=2)
    assert await db.fetchval("SELECT count(*) FROM stream_sessions") == 2
    await retention(db, keep_days=30).start(loops=2)
    ids = [r["id"] for r in await db.fetch("SELECT id FROM stream_sessions")]
    assert ids == [kept] and ancient not in ids
    assert (
        await db.fetchval("SELECT count(*) FROM viewer_samples_5m WHERE session_id = $1", ancient)
        == 0
    )


async def test_one_replica_at_a_time(db: asyncpg.Pool, factory: Factory) -> None:
    account, _ = await factory.account()
    session_id = await seed_session(db, account, "kick", NOW - timedelta(days=20), [1, 2])
    async with db.acquire() as other, other.transaction():
        await other.execute("SELECT pg_advisory_xact_lock(hashtext('lumio:history:retention'))")
        await retention(db).start(loops=1)
        assert len(await raw(db, session_id)) == 2
    await retention(db).start(loops=1)
    assert await raw(db, session_id) == []
