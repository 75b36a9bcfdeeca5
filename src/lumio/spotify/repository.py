"""All SQL of spotify_connections and spotify_plays: linking, the gates, the poller's leases.

The poller shares accounts among replicas as the platform worker shares channels: a batch of due
connections with an open gate is claimed with ``FOR UPDATE SKIP LOCKED`` under a lease token, and
every later write is fenced by that token. Gate writes carry the time the truth was read, and a
reading older than the stored one is ignored, so replicas racing on the same event cannot undo
each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from lumio.channel_status.repository import any_online_sql
from lumio.db.leases import claim_sql
from lumio.db.pool import Executor
from lumio.spotify.schemas import (
    ClaimedConnection,
    Connection,
    GateChange,
    GateRow,
    LinkStatus,
    NewLink,
    Play,
    PollOutcome,
    StoredTokens,
)

LINK = """
INSERT INTO spotify_connections AS sc (
    account_id, spotify_user_id, display_name, scope, access_token, refresh_token,
    access_expires_at, linked_by, linked_at, gate_open, gate_checked_at, next_poll_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $9)
ON CONFLICT (account_id) DO UPDATE SET
    spotify_user_id = EXCLUDED.spotify_user_id,
    display_name = EXCLUDED.display_name,
    scope = EXCLUDED.scope,
    access_token = EXCLUDED.access_token,
    refresh_token = EXCLUDED.refresh_token,
    access_expires_at = EXCLUDED.access_expires_at,
    linked_by = EXCLUDED.linked_by,
    linked_at = EXCLUDED.linked_at,
    status = 'active',
    status_detail = NULL,
    gate_open = EXCLUDED.gate_open,
    gate_checked_at = EXCLUDED.gate_checked_at,
    next_poll_at = EXCLUDED.next_poll_at,
    consecutive_errors = 0,
    last_error = NULL,
    -- A worker still holding the old link's lease must not store anything over the new one.
    leased_until = NULL,
    lease_token = NULL,
    playback = CASE WHEN sc.spotify_user_id = EXCLUDED.spotify_user_id
                    THEN sc.playback ELSE '{}' END
"""

UNLINK = "DELETE FROM spotify_connections WHERE account_id = $1 RETURNING account_id"

GET_CONNECTION = """
SELECT account_id, spotify_user_id, display_name, scope, status, status_detail, linked_at,
       gate_open, last_polled_at, last_error
FROM spotify_connections WHERE account_id = $1
"""

# The PostgreSQL half of the gate for connected accounts among $1 (the other half is in Redis).
ONLINE_AMONG = f"""
SELECT sc.account_id, {any_online_sql("sc.account_id")} AS online
FROM spotify_connections sc
WHERE sc.account_id = ANY($1::uuid[])
"""

# "was_open" reads the row as it was before this statement (the self-join sees the statement's
# snapshot). A gate that opens is due at once.
SET_GATES = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::boolean[]) AS t(account_id, open)
)
UPDATE spotify_connections sc SET
    gate_open = input.open,
    gate_checked_at = $3,
    next_poll_at = CASE WHEN input.open AND NOT old.gate_open THEN $3 ELSE sc.next_poll_at END
FROM input, spotify_connections old
WHERE sc.account_id = input.account_id AND old.account_id = sc.account_id
  AND (sc.gate_checked_at IS NULL OR sc.gate_checked_at <= $3)
RETURNING sc.account_id, old.gate_open AS was_open, sc.gate_open AS is_open
"""

# Every connection: open exactly when it is among $1.
RECONCILE_GATES = """
WITH open AS (SELECT DISTINCT unnest($1::uuid[]) AS account_id)
UPDATE spotify_connections sc SET
    gate_open = open.account_id IS NOT NULL,
    gate_checked_at = $2,
    next_poll_at = CASE WHEN open.account_id IS NOT NULL AND NOT old.gate_open
                        THEN $2 ELSE sc.next_poll_at END
FROM spotify_connections old LEFT JOIN open ON open.account_id = old.account_id
WHERE old.account_id = sc.account_id
  AND (sc.gate_checked_at IS NULL OR sc.gate_checked_at <= $2)
RETURNING sc.account_id, old.gate_open AS was_open, sc.gate_open AS is_open
"""

# Due connections with an open gate (see lumio.db.leases); "online" is the gate's PostgreSQL
# half, read afresh, so a closed gate is noticed at the latest when the account is next due.
CLAIM = claim_sql(
    "spotify_connections",
    "sc",
    ("account_id",),
    "gate_open AND status = 'active'",
    "sc.account_id, sc.access_token, sc.refresh_token, sc.access_expires_at, sc.playback, "
    f"sc.next_poll_at, sc.consecutive_errors, {any_online_sql('sc.account_id')} AS online",
)

SAVE_TOKENS = """
UPDATE spotify_connections SET
    access_token = $2,
    refresh_token = COALESCE($3, refresh_token),
    access_expires_at = $4,
    scope = CASE WHEN $5 = '' THEN scope ELSE $5 END
WHERE account_id = $1 AND lease_token = $6
RETURNING account_id
"""

COMPLETE = """
UPDATE spotify_connections sc SET
    next_poll_at = input.next_poll_at,
    playback = input.playback,
    consecutive_errors = input.errors,
    last_error = input.last_error,
    last_polled_at = input.polled_at,
    status = input.status,
    status_detail = input.status_detail,
    leased_until = NULL,
    lease_token = NULL
FROM unnest($1::uuid[], $2::timestamptz[], $3::jsonb[], $4::int[], $5::text[],
            $6::timestamptz[], $7::text[], $8::text[])
    AS input(account_id, next_poll_at, playback, errors, last_error, polled_at, status,
             status_detail)
WHERE sc.account_id = input.account_id AND sc.lease_token = $9
RETURNING sc.account_id, sc.gate_open
"""

RELEASE = """
UPDATE spotify_connections SET leased_until = NULL, lease_token = NULL, next_poll_at = $3
WHERE lease_token = $1 AND account_id = ANY($2::uuid[])
"""

NEXT_DUE = """
SELECT min(next_poll_at) FROM spotify_connections WHERE gate_open AND status = 'active'
"""

INSERT_PLAYS = """
INSERT INTO spotify_plays
    (account_id, kind, item_id, title, artists, album, art_url, url, duration_ms, started_at)
SELECT account_id, kind, item_id, title,
       ARRAY(SELECT jsonb_array_elements_text(artists)), album, art_url, url, duration_ms,
       started_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[],
            $8::text[], $9::int[], $10::timestamptz[])
    AS t(account_id, kind, item_id, title, artists, album, art_url, url, duration_ms, started_at)
"""

RECENT_PLAYS = """
SELECT kind, item_id, title, artists, album, art_url, url, duration_ms, started_at
FROM spotify_plays WHERE account_id = $1
ORDER BY started_at DESC, id DESC
LIMIT $2
"""


async def link(db: Executor, new: NewLink) -> None:
    await db.execute(
        LINK,
        new.account_id,
        new.profile.user_id,
        new.profile.display_name,
        new.scope,
        new.access_token,
        new.refresh_token,
        new.access_expires_at,
        new.linked_by,
        new.linked_at,
        new.gate_open,
    )


async def unlink(db: Executor, account_id: UUID) -> bool:
    return await db.fetchval(UNLINK, account_id) is not None


async def get_connection(db: Executor, account_id: UUID) -> Connection | None:
    row = await db.fetchrow(GET_CONNECTION, account_id)
    if row is None:
        return None
    return Connection(
        account_id=row["account_id"],
        spotify_user_id=row["spotify_user_id"],
        display_name=row["display_name"],
        scope=row["scope"],
        status=LinkStatus(row["status"]),
        status_detail=row["status_detail"],
        linked_at=row["linked_at"],
        gate_open=row["gate_open"],
        last_polled_at=row["last_polled_at"],
        last_error=row["last_error"],
    )


async def online_among(db: Executor, account_ids: Sequence[UUID]) -> list[GateRow]:
    rows = await db.fetch(ONLINE_AMONG, list(account_ids))
    return [GateRow(r["account_id"], r["online"]) for r in rows]


def _changes(rows: Sequence[asyncpg.Record]) -> list[GateChange]:
    return [GateChange(r["account_id"], r["was_open"], r["is_open"]) for r in rows]


async def set_gates(
    db: Executor, gates: Mapping[UUID, bool], checked_at: datetime
) -> list[GateChange]:
    if not gates:
        return []
    rows = await db.fetch(SET_GATES, list(gates), list(gates.values()), checked_at)
    return _changes(rows)


async def reconcile_gates(
    db: Executor, open_ids: Sequence[UUID], checked_at: datetime
) -> list[GateChange]:
    return _changes(await db.fetch(RECONCILE_GATES, list(open_ids), checked_at))


def _claimed(row: asyncpg.Record) -> ClaimedConnection:
    playback = row["playback"]
    return ClaimedConnection(
        account_id=row["account_id"],
        access_token=row["access_token"],
        refresh_token=row["refresh_token"],
        access_expires_at=row["access_expires_at"],
        playback=orjson.loads(playback) if isinstance(playback, str) else dict(playback),
        next_poll_at=row["next_poll_at"],
        consecutive_errors=row["consecutive_errors"],
        online=row["online"],
    )


async def claim(
    db: Executor, now: datetime, limit: int, lease_seconds: float, token: UUID
) -> list[ClaimedConnection]:
    rows = await db.fetch(CLAIM, now, limit, lease_seconds, token)
    return [_claimed(row) for row in rows]


async def save_tokens(db: Executor, tokens: StoredTokens, token: UUID) -> bool:
    """Store refreshed tokens while the lease holds; False when it was lost."""
    stored = await db.fetchval(
        SAVE_TOKENS,
        tokens.account_id,
        tokens.access_token,
        tokens.refresh_token,
        tokens.access_expires_at,
        tokens.scope,
        token,
    )
    return stored is not None


async def complete(db: Executor, outcomes: Sequence[PollOutcome], token: UUID) -> dict[UUID, bool]:
    """Store the outcomes of a batch still leased with ``token``: {account stored: gate open}."""
    if not outcomes:
        return {}
    rows = await db.fetch(
        COMPLETE,
        [o.account_id for o in outcomes],
        [o.next_poll_at for o in outcomes],
        [orjson.dumps(o.playback).decode() for o in outcomes],
        [o.consecutive_errors for o in outcomes],
        [o.last_error for o in outcomes],
        [o.polled_at for o in outcomes],
        [o.status.value for o in outcomes],
        [o.status_detail for o in outcomes],
        token,
    )
    return {r["account_id"]: r["gate_open"] for r in rows}


async def release(
    db: Executor, token: UUID, account_ids: Sequence[UUID], next_poll_at: datetime
) -> None:
    """Give back claimed connections unpolled (gate closed, budget spent, stopping)."""
    if account_ids:
        await db.execute(RELEASE, token, list(account_ids), next_poll_at)


async def next_due(db: Executor) -> datetime | None:
    due: datetime | None = await db.fetchval(NEXT_DUE)
    return due


async def insert_plays(db: Executor, plays: Sequence[tuple[UUID, Play]]) -> None:
    if not plays:
        return
    await db.execute(
        INSERT_PLAYS,
        [a for a, _ in plays],
        [p.kind for _, p in plays],
        [p.item_id for _, p in plays],
        [p.title for _, p in plays],
        [orjson.dumps(list(p.artists)).decode() for _, p in plays],
        [p.album for _, p in plays],
        [p.art_url for _, p in plays],
        [p.url for _, p in plays],
        [p.duration_ms for _, p in plays],
        [p.started_at for _, p in plays],
    )


async def recent_plays(db: Executor, account_id: UUID, limit: int) -> list[Play]:
    rows = await db.fetch(RECENT_PLAYS, account_id, limit)
    return [Play.model_validate(dict(r)) for r in rows]
