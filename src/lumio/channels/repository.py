"""All SQL of platform_channels: linking, and the worker's claim / complete / release (the status
rows are channel_status's)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from lumio.channel_status import repository as status_repository
from lumio.channels.schemas import ClaimedChannel, LinkedChannel, PollOutcome, TrackedCount
from lumio.db.leases import claim_sql
from lumio.db.pool import Executor
from lumio.platforms.base import Platform

# Re-linking to another channel forgets the old one's detector state and lease: a worker still
# polling the old channel then finds its lease token gone and stores nothing of it.
LINKED_NOW = """
SELECT channel_id FROM platform_channels WHERE account_id = $1 AND platform = $2 FOR UPDATE
"""
LINK = """
INSERT INTO platform_channels (account_id, platform, channel_id, display_name)
VALUES ($1, $2, $3, $4)
ON CONFLICT (account_id, platform) DO UPDATE SET
    channel_id = EXCLUDED.channel_id,
    display_name = EXCLUDED.display_name,
    detector_state = CASE WHEN platform_channels.channel_id = EXCLUDED.channel_id
                          THEN platform_channels.detector_state ELSE '{}' END,
    leased_until = CASE WHEN platform_channels.channel_id = EXCLUDED.channel_id
                        THEN platform_channels.leased_until END,
    lease_token = CASE WHEN platform_channels.channel_id = EXCLUDED.channel_id
                       THEN platform_channels.lease_token END,
    next_poll_at = now(),
    consecutive_errors = 0,
    last_error = NULL,
    error_since = NULL
RETURNING (xmax = 0) AS inserted
"""

UNLINK = (
    "DELETE FROM platform_channels WHERE account_id = $1 AND platform = $2 RETURNING channel_id"
)

LIST_LINKED = """
SELECT platform, channel_id, display_name, last_polled_at, last_error, error_since
FROM platform_channels WHERE account_id = $1 ORDER BY platform
"""

# Due, unleased channels of one platform ($5); see lumio.db.leases.
CLAIM = claim_sql(
    "platform_channels",
    "pc",
    ("account_id", "platform"),
    "platform = $5",
    "pc.account_id, pc.platform, pc.channel_id, pc.detector_state, pc.next_poll_at, "
    "pc.consecutive_errors, pc.display_name",
)

COMPLETE = """
UPDATE platform_channels pc SET
    detector_state = input.state,
    next_poll_at = input.next_poll_at,
    consecutive_errors = input.errors,
    last_error = input.last_error,
    error_since = CASE WHEN input.last_error IS NULL THEN NULL
                       ELSE COALESCE(pc.error_since, input.polled_at) END,
    last_polled_at = input.polled_at,
    leased_until = NULL,
    lease_token = NULL
FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::int[], $6::text[],
            $7::timestamptz[])
    AS input(account_id, platform, state, next_poll_at, errors, last_error, polled_at)
WHERE pc.account_id = input.account_id AND pc.platform = input.platform AND pc.lease_token = $8
RETURNING pc.account_id, pc.platform
"""

RELEASE = """
UPDATE platform_channels
SET leased_until = NULL, lease_token = NULL, next_poll_at = COALESCE($2, next_poll_at)
WHERE lease_token = $1
"""

# A push hint: every account linking this platform channel is due now (a channel under lease
# is rescheduled by its worker, which reads the hint when it stores the batch).
MAKE_DUE = """
UPDATE platform_channels SET next_poll_at = LEAST(next_poll_at, $3)
WHERE platform = $1 AND channel_id = $2
RETURNING account_id
"""

# The quota planner and the operators' budget view: channels polled, and those live.
COUNT_TRACKED = """
SELECT count(*) AS tracked, count(*) FILTER (WHERE detector_state ->> 'phase' = 'live') AS live
FROM platform_channels WHERE platform = $1
"""

IS_LINKED = (
    "SELECT EXISTS (SELECT 1 FROM platform_channels WHERE platform = $1 AND channel_id = $2)"
)


async def link(
    db: Executor, account_id: UUID, platform: Platform, channel_id: str, display_name: str
) -> str | None:
    """Link (or re-link) the account's channel on ``platform``; returns the channel id it
    replaces (None when newly linked). Run it in a transaction: the old link stays locked."""
    previous: str | None = await db.fetchval(LINKED_NOW, account_id, platform.value)
    await db.execute(LINK, account_id, platform.value, channel_id, display_name)
    return previous


async def unlink(db: Executor, account_id: UUID, platform: Platform) -> tuple[bool, bool]:
    """Remove the link and the channel's status row: (was linked, was showing online)."""
    removed = await db.fetchval(UNLINK, account_id, platform.value)
    was_online = await status_repository.delete_status(db, account_id, platform)
    return removed is not None, was_online


async def list_linked(db: Executor, account_id: UUID) -> list[LinkedChannel]:
    rows = await db.fetch(LIST_LINKED, account_id)
    return [LinkedChannel.model_validate(dict(r)) for r in rows]


def _claimed(row: asyncpg.Record) -> ClaimedChannel:
    state = row["detector_state"]
    return ClaimedChannel(
        account_id=row["account_id"],
        platform=Platform(row["platform"]),
        channel_id=row["channel_id"],
        detector_state=orjson.loads(state) if isinstance(state, str) else dict(state),
        next_poll_at=row["next_poll_at"],
        consecutive_errors=row["consecutive_errors"],
        display_name=row["display_name"],
    )


async def claim(
    db: Executor,
    platform: Platform,
    now: datetime,
    limit: int,
    lease_seconds: float,
    token: UUID,
) -> list[ClaimedChannel]:
    rows = await db.fetch(CLAIM, now, limit, lease_seconds, token, platform.value)
    return [_claimed(row) for row in rows]


async def complete(
    db: Executor, outcomes: Sequence[PollOutcome], token: UUID
) -> set[tuple[UUID, Platform]]:
    """Store the outcomes of a batch still leased with ``token``; returns the channels stored."""
    if not outcomes:
        return set()
    rows = await db.fetch(
        COMPLETE,
        [o.account_id for o in outcomes],
        [o.platform.value for o in outcomes],
        [orjson.dumps(o.detector_state).decode() for o in outcomes],
        [o.next_poll_at for o in outcomes],
        [o.consecutive_errors for o in outcomes],
        [o.last_error for o in outcomes],
        [o.polled_at for o in outcomes],
        token,
    )
    return {(r["account_id"], Platform(r["platform"])) for r in rows}


async def release(db: Executor, token: UUID, next_poll_at: datetime | None) -> None:
    """Give back a claimed batch unpolled (stopping, the platform's budget is spent, or a batch
    not worth a request yet); None keeps each channel's own schedule."""
    await db.execute(RELEASE, token, next_poll_at)


async def make_due(db: Executor, platform: Platform, channel_id: str, now: datetime) -> int:
    """Make every link of this platform channel due at ``now``; returns how many there are."""
    rows = await db.fetch(MAKE_DUE, platform.value, channel_id, now)
    return len(rows)


async def count_tracked(db: Executor, platform: Platform) -> TrackedCount:
    tracked, live = (await db.fetch(COUNT_TRACKED, platform.value))[0]
    return TrackedCount(tracked, live)


async def is_linked(db: Executor, platform: Platform, channel_id: str) -> bool:
    """Does any account link this platform channel?"""
    linked: bool = await db.fetchval(IS_LINKED, platform.value, channel_id)
    return linked
