"""All SQL of push_subscriptions, push_hints and push_secrets."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from lumio.db.pool import Executor
from lumio.platforms.base import Platform
from lumio.push.schemas import (
    ChannelPush,
    Hint,
    KnownSubscription,
    OnlineHint,
    PushFacts,
    PushStatus,
    SubscriptionKey,
    SubscriptionResult,
    SubscriptionWork,
)

# Every linked channel of the push platforms gets a row per topic; existing rows stay as they are.
ADD_MISSING = """
INSERT INTO push_subscriptions (platform, channel_id, topic)
SELECT DISTINCT pc.platform, pc.channel_id, t.topic
FROM platform_channels pc
JOIN unnest($1::text[], $2::text[]) AS t(platform, topic) ON t.platform = pc.platform
ON CONFLICT DO NOTHING
"""

# Subscriptions that need the platform: new, failed, revoked, stuck in verification, a lease
# running out (YouTube), or no longer linked. SKIP LOCKED and the lease keep two replicas from
# creating the same subscription.
CLAIM_WORK = """
WITH work AS (
    SELECT ps.platform, ps.channel_id, ps.topic FROM push_subscriptions ps
    WHERE ps.platform = ANY($1::text[]) AND ps.next_attempt_at <= $2
      AND (ps.leased_until IS NULL OR ps.leased_until < $2)
      AND (ps.status IN ('failed', 'revoked')
           OR (ps.status = 'pending' AND (ps.external_id IS NULL
                                          OR ps.updated_at < $2 - interval '10 minutes'))
           OR ps.expires_at < $2 + make_interval(secs => $5)
           OR NOT EXISTS (SELECT 1 FROM platform_channels pc
                          WHERE pc.platform = ps.platform AND pc.channel_id = ps.channel_id))
    ORDER BY ps.next_attempt_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE push_subscriptions ps
SET leased_until = $2 + interval '2 minutes', lease_token = $4
FROM work
WHERE ps.platform = work.platform AND ps.channel_id = work.channel_id AND ps.topic = work.topic
RETURNING ps.platform, ps.channel_id, ps.topic, ps.status, ps.external_id, ps.attempts,
    EXISTS (SELECT 1 FROM platform_channels pc
            WHERE pc.platform = ps.platform AND pc.channel_id = ps.channel_id) AS linked
"""

# A lease that ended before the platform verified its renewal: no message can come any more, so
# the row stops counting as push (the worker polls at the ordinary interval), and the claim's
# stuck-in-verification rule retries it as it does a new subscription.
LAPSE = """
UPDATE push_subscriptions SET
    status = 'pending', reason = 'the lease ended before a renewal was verified', updated_at = now()
WHERE platform = ANY($1::text[]) AND status = 'enabled' AND expires_at <= $2
"""

# A verification that arrived before this write (the challenge races the create's answer) has
# enabled the same subscription already: pending does not undo it.
FINISH = """
UPDATE push_subscriptions SET
    status = CASE WHEN status = 'enabled' AND $4 = 'pending' AND external_id IS NOT DISTINCT FROM $5
                  THEN 'enabled' ELSE $4 END,
    external_id = $5, reason = $6, attempts = $7, next_attempt_at = $8,
    expires_at = COALESCE($9, expires_at), leased_until = NULL, lease_token = NULL,
    updated_at = now()
WHERE platform = $1 AND channel_id = $2 AND topic = $3 AND lease_token = $10
"""

DELETE_CLAIMED = """
DELETE FROM push_subscriptions
WHERE platform = $1 AND channel_id = $2 AND topic = $3 AND lease_token = $4
"""

EXTERNAL_IDS = """
SELECT external_id FROM push_subscriptions WHERE platform = $1 AND external_id IS NOT NULL
"""

# Enabled here but gone (or not enabled) at the platform: recreate. Recent rows are spared, their
# verification may still be on its way.
MARK_MISSING = """
UPDATE push_subscriptions SET status = 'failed', reason = 'missing at the platform',
    next_attempt_at = $3::timestamptz, updated_at = now()
WHERE platform = $1 AND status = 'enabled' AND external_id IS NOT NULL
  AND NOT external_id = ANY($2::text[]) AND updated_at < $3::timestamptz - interval '1 minute'
RETURNING 1
"""

FIND = """
SELECT status, external_id FROM push_subscriptions
WHERE platform = $1 AND channel_id = $2 AND topic = $3
"""

# The platform proved the callback works (Twitch's challenge, the hub's verification).
ENABLE = """
UPDATE push_subscriptions SET
    status = 'enabled', external_id = COALESCE($4, external_id), expires_at = $5,
    reason = NULL, attempts = 0, updated_at = now()
WHERE platform = $1 AND channel_id = $2 AND topic = $3
RETURNING 1
"""

# The platform ended a subscription; the reconciler recreates it at next_attempt_at.
REVOKE = """
UPDATE push_subscriptions SET
    status = 'revoked', reason = $3, next_attempt_at = $4, updated_at = now()
WHERE platform = $1 AND external_id = $2
RETURNING 1
"""

RECORD_HINT = """
INSERT INTO push_hints AS h (platform, channel_id, hinted_at, last_message_at,
                             online_stream_id, online_started_at, online_at)
VALUES ($1, $2, $3::timestamptz, $3, $4::text, $5::timestamptz,
        CASE WHEN $4::text IS NULL THEN NULL ELSE $3::timestamptz END)
ON CONFLICT (platform, channel_id) DO UPDATE SET
    hinted_at = EXCLUDED.hinted_at,
    last_message_at = EXCLUDED.last_message_at,
    online_stream_id = COALESCE(EXCLUDED.online_stream_id, h.online_stream_id),
    online_started_at = COALESCE(EXCLUDED.online_started_at, h.online_started_at),
    online_at = COALESCE(EXCLUDED.online_at, h.online_at)
"""

# Per polled channel: are all its subscriptions enabled, and the last hint.
FACTS = """
SELECT c.channel_id,
       COALESCE((SELECT bool_and(ps.status = 'enabled') FROM push_subscriptions ps
                 WHERE ps.platform = $1 AND ps.channel_id = c.channel_id), FALSE) AS enabled,
       h.hinted_at, h.online_stream_id, h.online_started_at, h.online_at
FROM unnest($2::text[]) AS c(channel_id)
LEFT JOIN push_hints h ON h.platform = $1 AND h.channel_id = c.channel_id
"""

CHANNEL_STATUS = """
SELECT c.platform, c.channel_id,
       array_remove(array_agg(ps.status), NULL) AS statuses, max(h.last_message_at) AS last_message_at
FROM unnest($1::text[], $2::text[]) AS c(platform, channel_id)
LEFT JOIN push_subscriptions ps ON ps.platform = c.platform AND ps.channel_id = c.channel_id
LEFT JOIN push_hints h ON h.platform = c.platform AND h.channel_id = c.channel_id
GROUP BY c.platform, c.channel_id
"""

COUNT_BY_STATUS = "SELECT platform, status, count(*) AS n FROM push_subscriptions GROUP BY 1, 2"

ADD_SIGNING_KEY = """
INSERT INTO push_secrets (platform, secret) VALUES ($1, $2) ON CONFLICT (platform) DO NOTHING
"""
GET_SIGNING_KEY = "SELECT secret FROM push_secrets WHERE platform = $1"


async def add_missing(db: Executor, topics: dict[Platform, tuple[str, ...]]) -> None:
    pairs = [(p.value, t) for p, ts in topics.items() for t in ts]
    await db.execute(ADD_MISSING, [p for p, _ in pairs], [t for _, t in pairs])


async def lapse(db: Executor, platforms: Sequence[Platform], now: datetime) -> None:
    await db.execute(LAPSE, [p.value for p in platforms], now)


async def claim_work(
    db: Executor,
    platforms: Sequence[Platform],
    now: datetime,
    limit: int,
    token: UUID,
    renew_before_seconds: float,
) -> list[SubscriptionWork]:
    names = [p.value for p in platforms]
    rows = await db.fetch(CLAIM_WORK, names, now, limit, token, renew_before_seconds)
    return [_work(row) for row in rows]


def _work(row: asyncpg.Record) -> SubscriptionWork:
    key = SubscriptionKey(Platform(row["platform"]), row["channel_id"], row["topic"])
    return SubscriptionWork(key, row["status"], row["external_id"], row["attempts"], row["linked"])


async def finish(db: Executor, result: SubscriptionResult, token: UUID) -> None:
    key = result.key
    await db.execute(
        FINISH, key.platform.value, key.channel_id, key.topic, result.status,
        result.external_id, result.reason, result.attempts, result.next_attempt_at,
        result.expires_at, token,
    )  # fmt: skip


async def delete_claimed(db: Executor, key: SubscriptionKey, token: UUID) -> None:
    await db.execute(DELETE_CLAIMED, key.platform.value, key.channel_id, key.topic, token)


async def external_ids(db: Executor, platform: Platform) -> set[str]:
    return {r["external_id"] for r in await db.fetch(EXTERNAL_IDS, platform.value)}


async def mark_missing(db: Executor, platform: Platform, present: list[str], now: datetime) -> int:
    return len(await db.fetch(MARK_MISSING, platform.value, present, now))


async def find(db: Executor, key: SubscriptionKey) -> KnownSubscription | None:
    row = await db.fetchrow(FIND, key.platform.value, key.channel_id, key.topic)
    return None if row is None else KnownSubscription(row["status"], row["external_id"])


async def enable(
    db: Executor, key: SubscriptionKey, external_id: str | None, expires_at: datetime | None
) -> bool:
    args = (key.platform.value, key.channel_id, key.topic, external_id, expires_at)
    return await db.fetchval(ENABLE, *args) is not None


async def revoke(
    db: Executor, platform: Platform, external_id: str, reason: str, retry_at: datetime
) -> bool:
    return await db.fetchval(REVOKE, platform.value, external_id, reason, retry_at) is not None


async def record_hint(db: Executor, hint: Hint, now: datetime) -> None:
    online = hint.online
    await db.execute(
        RECORD_HINT, hint.platform.value, hint.channel_id, now,
        online.stream_id if online else None, online.started_at if online else None,
    )  # fmt: skip


async def facts(db: Executor, platform: Platform, channel_ids: list[str]) -> dict[str, PushFacts]:
    rows = await db.fetch(FACTS, platform.value, channel_ids)
    return {r["channel_id"]: _facts(r) for r in rows}


def _facts(row: asyncpg.Record) -> PushFacts:
    online = None
    if row["online_stream_id"] is not None and row["online_started_at"] is not None:
        online = OnlineHint(row["online_stream_id"], row["online_started_at"])
    return PushFacts(row["channel_id"], row["enabled"], row["hinted_at"], online, row["online_at"])


async def channel_push(
    db: Executor, channels: Sequence[tuple[Platform, str]]
) -> dict[tuple[Platform, str], ChannelPush]:
    rows = await db.fetch(CHANNEL_STATUS, [p.value for p, _ in channels], [c for _, c in channels])
    return {
        (Platform(r["platform"]), r["channel_id"]): ChannelPush(
            overall_status(r["statuses"]), r["last_message_at"]
        )
        for r in rows
    }


def overall_status(statuses: Sequence[str]) -> PushStatus:
    """One channel's status from its topics': the worst one wins."""
    if not statuses:
        return PushStatus.NONE
    for worst in (PushStatus.REVOKED, PushStatus.FAILED, PushStatus.PENDING):
        if worst.value in statuses:
            return worst
    return PushStatus.ENABLED


async def count_by_status(db: Executor) -> dict[tuple[str, str], int]:
    return {(r["platform"], r["status"]): r["n"] for r in await db.fetch(COUNT_BY_STATUS)}


async def installation_secret(db: Executor, platform: Platform) -> str:
    """This installation's secret for ``platform``, made on first use and shared by every process."""
    await db.execute(ADD_SIGNING_KEY, platform.value, secrets.token_urlsafe(32))
    secret: str = await db.fetchval(GET_SIGNING_KEY, platform.value)
    return secret
