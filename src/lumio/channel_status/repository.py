"""All SQL of channel_status (the seed's six functions and the batch writers).

Every writer takes the observation time and ignores an observation older than the row's
``updated_at``, so two workers racing cannot move a row backwards. Each batch writer is one
statement over ``unnest`` arrays; the single-row forms are the same statement over one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from uuid import UUID

import asyncpg

from lumio.channel_status.schemas import (
    Applied,
    ChannelStatus,
    OfflineWrite,
    OnlineAccount,
    OnlineWrite,
    StatusRow,
    StreamDataWrite,
)
from lumio.db.pool import Executor
from lumio.platforms.base import Platform

W = TypeVar("W", OnlineWrite, OfflineWrite, StreamDataWrite)


def any_online_sql(account: str) -> str:
    """SQL: whether the account in column ``account`` shows any channel online -- for other
    tables' statements that must read it in the same snapshot (the Spotify gate)."""
    return (
        f"EXISTS (SELECT 1 FROM channel_status cs WHERE cs.account_id = {account} AND cs.is_online)"
    )


GET_STATUS = """
SELECT platform, is_online, stream_title, category, viewer_count, started_at, updated_at
FROM channel_status
WHERE account_id = $1
ORDER BY platform
"""

DELETE_STATUS = """
DELETE FROM channel_status WHERE account_id = $1 AND platform = $2 RETURNING is_online
"""

IS_ANY_ONLINE = """
SELECT EXISTS (SELECT 1 FROM channel_status WHERE account_id = $1 AND is_online)
"""

GET_ALL_ONLINE_ACCOUNTS = """
SELECT account_id, array_agg(platform ORDER BY platform) AS platforms
FROM channel_status
WHERE is_online
GROUP BY account_id
ORDER BY account_id
"""

# "changed" compares with the row as it was before this statement ("before" reads the
# statement's snapshot), so callers know whether the write was a transition. It is joined to the
# written rows once (a correlated lookup per returned row would make big batches quadratic).
SET_ONLINE = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
                         $6::timestamptz[], $7::timestamptz[])
        AS t(account_id, platform, stream_title, category, viewer_count, started_at, observed_at)
), before AS (
    SELECT cs.account_id, cs.platform, cs.is_online
    FROM channel_status cs JOIN input USING (account_id, platform)
), written AS (
    INSERT INTO channel_status AS cs
        (account_id, platform, is_online, stream_title, category, viewer_count, started_at,
         updated_at)
    SELECT account_id, platform, TRUE, stream_title, category, viewer_count, started_at,
           observed_at
    FROM input
    ON CONFLICT (account_id, platform) DO UPDATE SET
        is_online = TRUE,
        stream_title = EXCLUDED.stream_title,
        category = EXCLUDED.category,
        viewer_count = EXCLUDED.viewer_count,
        started_at = EXCLUDED.started_at,
        updated_at = EXCLUDED.updated_at
    WHERE cs.updated_at <= EXCLUDED.updated_at
    RETURNING cs.account_id, cs.platform
)
SELECT w.account_id, w.platform, NOT COALESCE(b.is_online, FALSE) AS changed
FROM written w LEFT JOIN before b USING (account_id, platform)
"""

SET_OFFLINE = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])
        AS t(account_id, platform, observed_at)
), before AS (
    SELECT cs.account_id, cs.platform, cs.is_online
    FROM channel_status cs JOIN input USING (account_id, platform)
), written AS (
    INSERT INTO channel_status AS cs (account_id, platform, is_online, started_at, updated_at)
    SELECT account_id, platform, FALSE, NULL, observed_at FROM input
    ON CONFLICT (account_id, platform) DO UPDATE SET
        is_online = FALSE,
        started_at = NULL,
        updated_at = EXCLUDED.updated_at
    WHERE cs.updated_at <= EXCLUDED.updated_at
    RETURNING cs.account_id, cs.platform
)
SELECT w.account_id, w.platform, COALESCE(b.is_online, FALSE) AS changed
FROM written w LEFT JOIN before b USING (account_id, platform)
"""

UPDATE_STREAM_DATA = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
                         $6::timestamptz[])
        AS t(account_id, platform, stream_title, category, viewer_count, observed_at)
)
UPDATE channel_status AS cs SET
    stream_title = input.stream_title,
    category = input.category,
    viewer_count = input.viewer_count,
    updated_at = input.observed_at
FROM input, channel_status AS old
WHERE cs.account_id = input.account_id AND cs.platform = input.platform
  AND old.account_id = cs.account_id AND old.platform = cs.platform
  AND cs.is_online
  AND cs.updated_at <= input.observed_at
RETURNING cs.account_id, cs.platform,
    (old.stream_title IS DISTINCT FROM input.stream_title
     OR old.category IS DISTINCT FROM input.category
     OR old.viewer_count IS DISTINCT FROM input.viewer_count) AS changed
"""


def _latest(writes: Sequence[W]) -> list[W]:
    """One write per (account, platform): the newest observation (an upsert may touch a row once)."""
    newest: dict[tuple[UUID, str], W] = {}
    for write in writes:
        key = (write.account_id, write.platform)
        if key not in newest or newest[key].observed_at <= write.observed_at:
            newest[key] = write
    return list(newest.values())


def _applied(rows: Sequence[asyncpg.Record]) -> list[Applied]:
    return [Applied(r["account_id"], Platform(r["platform"]), r["changed"]) for r in rows]


async def get_status_rows(db: Executor, account_id: UUID) -> list[StatusRow]:
    rows: list[StatusRow] = await db.fetch(GET_STATUS, account_id, record_class=StatusRow)
    return rows


async def get_status(db: Executor, account_id: UUID) -> list[ChannelStatus]:
    rows = await get_status_rows(db, account_id)
    return [ChannelStatus.model_validate(dict(row)) for row in rows]


async def is_any_online(db: Executor, account_id: UUID) -> bool:
    return bool(await db.fetchval(IS_ANY_ONLINE, account_id))


async def delete_status(db: Executor, account_id: UUID, platform: Platform) -> bool:
    """Remove the platform's status row (its channel was unlinked); True when it showed online."""
    return bool(await db.fetchval(DELETE_STATUS, account_id, platform.value))


async def get_all_online_accounts(db: Executor) -> list[OnlineAccount]:
    rows = await db.fetch(GET_ALL_ONLINE_ACCOUNTS)
    return [OnlineAccount(r["account_id"], tuple(r["platforms"])) for r in rows]


async def set_online_many(db: Executor, writes: Sequence[OnlineWrite]) -> list[Applied]:
    writes = _latest(writes)
    if not writes:
        return []
    rows = await db.fetch(
        SET_ONLINE,
        [w.account_id for w in writes],
        [w.platform.value for w in writes],
        [w.stream_title for w in writes],
        [w.category for w in writes],
        [w.viewer_count for w in writes],
        [w.started_at for w in writes],
        [w.observed_at for w in writes],
    )
    return _applied(rows)


async def set_offline_many(db: Executor, writes: Sequence[OfflineWrite]) -> list[Applied]:
    writes = _latest(writes)
    if not writes:
        return []
    rows = await db.fetch(
        SET_OFFLINE,
        [w.account_id for w in writes],
        [w.platform.value for w in writes],
        [w.observed_at for w in writes],
    )
    return _applied(rows)


async def update_stream_data_many(db: Executor, writes: Sequence[StreamDataWrite]) -> list[Applied]:
    writes = _latest(writes)
    if not writes:
        return []
    rows = await db.fetch(
        UPDATE_STREAM_DATA,
        [w.account_id for w in writes],
        [w.platform.value for w in writes],
        [w.stream_title for w in writes],
        [w.category for w in writes],
        [w.viewer_count for w in writes],
        [w.observed_at for w in writes],
    )
    return _applied(rows)


async def set_online(db: Executor, write: OnlineWrite) -> Applied | None:
    applied = await set_online_many(db, [write])
    return applied[0] if applied else None


async def set_offline(db: Executor, write: OfflineWrite) -> Applied | None:
    applied = await set_offline_many(db, [write])
    return applied[0] if applied else None


async def update_stream_data(db: Executor, write: StreamDataWrite) -> Applied | None:
    applied = await update_stream_data_many(db, [write])
    return applied[0] if applied else None
