"""Sessions written straight into the history tables, as the worker would have."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg


async def seed_session(
    db: asyncpg.Pool,
    account_id: UUID,
    platform: str,
    started_at: datetime,
    viewers: Sequence[int],
    *,
    every: timedelta = timedelta(seconds=30),
    title: str = "A stream",
    category: str = "Just Chatting",
    ended: bool = True,
) -> UUID:
    """A session with one sample every ``every`` from ``started_at``."""
    last = started_at + every * max(len(viewers) - 1, 0)
    session_id: UUID = await db.fetchval(
        "INSERT INTO stream_sessions (account_id, platform, stream_id, started_at, ended_at,"
        " last_seen_at, title, category, peak_viewers, viewer_sum, viewer_samples)"
        " VALUES ($1, $2, gen_random_uuid()::text, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        account_id,
        platform,
        started_at,
        last if ended else None,
        last,
        title,
        category,
        max(viewers) if viewers else None,
        sum(viewers),
        len(viewers),
    )
    await db.execute(
        "INSERT INTO stream_segments (session_id, started_at, title, category)"
        " VALUES ($1, $2, $3, $4)",
        session_id,
        started_at,
        title,
        category,
    )
    await db.execute(
        "INSERT INTO viewer_samples (session_id, observed_at, viewers)"
        " SELECT $1, $2::timestamptz + $3::interval * (n - 1), v FROM unnest($4::int[]) WITH ORDINALITY AS t(v, n)",
        session_id,
        started_at,
        every,
        list(viewers),
    )
    return session_id
