"""All SQL of webhook_endpoints, webhook_deliveries (the outbox and its log) and
webhook_discord_messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import asyncpg

from lumio.db.pool import Executor
from lumio.webhooks.schemas import (
    Notice,
    Outcome,
    Queued,
    Webhook,
    WebhookDelivery,
    WebhookIn,
    WebhookPatch,
)

_ENDPOINT_COLUMNS = """id, kind, url, description, events, enabled, template, disabled_reason,
    failing_since, last_delivery_at, last_status, previous_until, created_at"""

INSERT_ENDPOINT = f"""
INSERT INTO webhook_endpoints (id, account_id, kind, url, description, events, template, secret)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING {_ENDPOINT_COLUMNS}
"""

LIST_ENDPOINTS = f"""
SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = $1 ORDER BY created_at, id
"""

GET_ENDPOINT = f"""
SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE account_id = $1 AND id = $2
"""

# NULL keeps a field; enabling again clears the health a disabled endpoint showed.
UPDATE_ENDPOINT = f"""
UPDATE webhook_endpoints SET
    url = COALESCE($3, url),
    description = COALESCE($4, description),
    events = COALESCE($5, events),
    template = CASE WHEN $7 THEN $6 ELSE template END,
    enabled = COALESCE($8, enabled),
    disabled_reason = CASE WHEN $8 THEN NULL ELSE disabled_reason END,
    failing_since = CASE WHEN $8 THEN NULL ELSE failing_since END
WHERE account_id = $1 AND id = $2
RETURNING {_ENDPOINT_COLUMNS}
"""

DELETE_ENDPOINT = "DELETE FROM webhook_endpoints WHERE account_id = $1 AND id = $2 RETURNING id"

ROTATE_SECRET = f"""
UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $4, secret = $3
WHERE account_id = $1 AND id = $2
RETURNING {_ENDPOINT_COLUMNS}
"""

# The outbox row of a status transaction, written in it; nothing when no account of the batch
# has an enabled endpoint (the usual case costs one index probe).
ENQUEUE = """
INSERT INTO webhook_outbox (facts)
SELECT $2::text
WHERE EXISTS (
    SELECT 1 FROM webhook_endpoints WHERE account_id = ANY ($1::uuid[]) AND enabled)
"""

# One dispatcher at a time (the advisory lock of the caller's transaction), so that the
# deliveries' seq follows the order in which the changes were committed.
DISPATCH_LOCK = "SELECT pg_try_advisory_xact_lock(8130013)"
TAKE_OUTBOX = """
DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox ORDER BY id LIMIT $1)
RETURNING id, facts, created_at
"""

SUBSCRIBERS = """
SELECT id, account_id, events FROM webhook_endpoints
WHERE account_id = ANY ($1::uuid[]) AND enabled ORDER BY id
"""

# seq is drawn in the order given (per endpoint and channel, the order of the changes).
INSERT_DELIVERIES = """
INSERT INTO webhook_deliveries
    (id, endpoint_id, account_id, channel_key, event_type, body, queued_at, next_attempt_at)
SELECT gen_random_uuid(), d.endpoint_id, d.account_id, d.channel_key, d.event_type, d.body,
    d.queued_at, d.queued_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
    WITH ORDINALITY AS d (endpoint_id, account_id, channel_key, event_type, body, queued_at, ord)
ORDER BY d.ord
"""

# A test message goes to the one endpoint, whatever it subscribes to.
ENQUEUE_FOR_ENDPOINT = """
INSERT INTO webhook_deliveries (id, endpoint_id, account_id, channel_key, event_type, body)
VALUES ($1, $2, $3, $4, $5, $6)
"""

_DELIVERY_COLUMNS = """id, endpoint_id, event_type, state, attempts, created_at,
    CASE WHEN state = 'pending' THEN next_attempt_at END AS next_attempt_at, finished_at,
    last_attempt_at, response_status, latency_ms, response_body, error"""

LIST_DELIVERIES = f"""
SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries
WHERE account_id = $1 AND endpoint_id = $2 ORDER BY created_at DESC, seq DESC LIMIT $3
"""

GET_DELIVERY = f"""
SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries
WHERE account_id = $1 AND endpoint_id = $2 AND id = $3
"""

# Redelivery sends the same message (the same webhook-id) again, now.
REDELIVER = f"""
UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $4, finished_at = NULL,
    leased_until = NULL
WHERE account_id = $1 AND endpoint_id = $2 AND id = $3
RETURNING {_DELIVERY_COLUMNS}
"""

# Due deliveries of enabled endpoints, each the oldest still pending of its endpoint and
# channel (a later change never overtakes an earlier one still retrying), leased to the claimer.
CLAIM = """
WITH due AS (
    SELECT d.id FROM webhook_deliveries d
    JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
    WHERE d.state = 'pending' AND d.next_attempt_at <= $1
      AND (d.leased_until IS NULL OR d.leased_until <= $1)
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries e
          WHERE e.endpoint_id = d.endpoint_id AND e.channel_key = d.channel_key
            AND e.state = 'pending' AND e.seq < d.seq)
    ORDER BY d.next_attempt_at, d.seq
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d SET leased_until = $1 + $3::interval, attempts = d.attempts + 1
FROM due, webhook_endpoints w
WHERE d.id = due.id AND w.id = d.endpoint_id
RETURNING d.id, d.endpoint_id, d.account_id, d.channel_key, d.event_type, d.body, d.attempts,
    w.kind, w.url, w.template, w.secret,
    CASE WHEN w.previous_until > $1 THEN w.previous_secret END AS previous_secret,
    w.failing_since
"""

FINISH = """
UPDATE webhook_deliveries d SET
    state = u.state,
    next_attempt_at = COALESCE(u.next_at, d.next_attempt_at),
    leased_until = NULL,
    finished_at = CASE WHEN u.state = 'pending' THEN NULL ELSE u.at END,
    last_attempt_at = u.at,
    response_status = u.status,
    latency_ms = u.latency,
    response_body = u.body,
    error = u.error
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::int[],
            $7::text[], $8::text[]) AS u (id, state, next_at, at, status, latency, body, error)
WHERE d.id = u.id
"""

# One row per endpoint: its latest outcome in the batch.
RECORD_HEALTH = """
UPDATE webhook_endpoints w SET
    last_delivery_at = u.at,
    last_status = u.status,
    failing_since = u.failing_since,
    enabled = w.enabled AND u.disabled_reason IS NULL,
    disabled_reason = COALESCE(u.disabled_reason, w.disabled_reason)
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::timestamptz[], $5::text[])
    AS u (id, at, status, failing_since, disabled_reason)
WHERE w.id = u.id
"""

# A disabled endpoint's pending deliveries are given up (shown as failed, redeliverable).
FAIL_PENDING = """
UPDATE webhook_deliveries SET state = 'failed', finished_at = $2, leased_until = NULL,
    error = COALESCE(error, 'the endpoint was disabled')
WHERE endpoint_id = ANY ($1::uuid[]) AND state = 'pending'
"""

PURGE = "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND finished_at < $1"

SAVE_DISCORD_MESSAGE = """
INSERT INTO webhook_discord_messages (endpoint_id, channel_key, message_id, started_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (endpoint_id, channel_key) DO UPDATE SET
    message_id = EXCLUDED.message_id, started_at = EXCLUDED.started_at
"""

GET_DISCORD_MESSAGE = """
SELECT message_id, started_at FROM webhook_discord_messages
WHERE endpoint_id = $1 AND channel_key = $2
"""

FORGET_DISCORD_MESSAGE = """
DELETE FROM webhook_discord_messages WHERE endpoint_id = $1 AND channel_key = $2
"""


def _webhook(row: asyncpg.Record, now: datetime) -> Webhook:
    values = dict(row)
    until = values.pop("previous_until")
    return Webhook(**values, previous_secret_until=until if until and until > now else None)


def _delivery(row: asyncpg.Record) -> WebhookDelivery:
    return WebhookDelivery(**dict(row))


async def insert_endpoint(
    db: Executor, endpoint_id: UUID, account_id: UUID, body: WebhookIn, secret: bytes, now: datetime
) -> Webhook:
    row = await db.fetchrow(
        INSERT_ENDPOINT,
        endpoint_id,
        account_id,
        body.kind,
        body.url,
        body.description,
        body.events,
        body.template,
        secret,
    )
    assert row is not None
    return _webhook(row, now)


async def list_endpoints(db: Executor, account_id: UUID, now: datetime) -> list[Webhook]:
    return [_webhook(row, now) for row in await db.fetch(LIST_ENDPOINTS, account_id)]


async def get_endpoint(
    db: Executor, account_id: UUID, endpoint_id: UUID, now: datetime
) -> Webhook | None:
    row = await db.fetchrow(GET_ENDPOINT, account_id, endpoint_id)
    return None if row is None else _webhook(row, now)


async def update_endpoint(
    db: Executor, account_id: UUID, endpoint_id: UUID, patch: WebhookPatch, now: datetime
) -> Webhook | None:
    template_set = "template" in patch.model_fields_set
    row = await db.fetchrow(
        UPDATE_ENDPOINT,
        account_id,
        endpoint_id,
        patch.url,
        patch.description,
        patch.events,
        patch.template,
        template_set,
        patch.enabled,
    )
    return None if row is None else _webhook(row, now)


async def delete_endpoint(db: Executor, account_id: UUID, endpoint_id: UUID) -> bool:
    return await db.fetchval(DELETE_ENDPOINT, account_id, endpoint_id) is not None


async def rotate_secret(
    db: Executor,
    account_id: UUID,
    endpoint_id: UUID,
    secret: bytes,
    previous_until: datetime,
    now: datetime,
) -> Webhook | None:
    row = await db.fetchrow(ROTATE_SECRET, account_id, endpoint_id, secret, previous_until)
    return None if row is None else _webhook(row, now)


async def enqueue(db: Executor, account_ids: Sequence[UUID], facts: str) -> None:
    await db.execute(ENQUEUE, account_ids, facts)


async def dispatch_lock(conn: Executor) -> bool:
    return bool(await conn.fetchval(DISPATCH_LOCK))


async def take_outbox(conn: Executor, limit: int) -> list[asyncpg.Record]:
    rows = await conn.fetch(TAKE_OUTBOX, limit)
    return sorted(rows, key=lambda row: row["id"])


async def subscribers(conn: Executor, account_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(SUBSCRIBERS, account_ids)


async def insert_deliveries(conn: Executor, rows: Sequence[Queued]) -> None:
    if rows:
        await conn.execute(INSERT_DELIVERIES, *zip(*rows, strict=True))


async def enqueue_for_endpoint(db: Executor, endpoint_id: UUID, notice: Notice) -> UUID:
    delivery_id = uuid4()
    await db.execute(
        ENQUEUE_FOR_ENDPOINT,
        delivery_id,
        endpoint_id,
        notice.account_id,
        notice.channel_key,
        notice.event_type,
        notice.body,
    )
    return delivery_id


async def list_deliveries(
    db: Executor, account_id: UUID, endpoint_id: UUID, limit: int
) -> list[WebhookDelivery]:
    return [_delivery(r) for r in await db.fetch(LIST_DELIVERIES, account_id, endpoint_id, limit)]


async def get_delivery(
    db: Executor, account_id: UUID, endpoint_id: UUID, delivery_id: UUID
) -> WebhookDelivery | None:
    row = await db.fetchrow(GET_DELIVERY, account_id, endpoint_id, delivery_id)
    return None if row is None else _delivery(row)


async def redeliver(
    db: Executor, account_id: UUID, endpoint_id: UUID, delivery_id: UUID, now: datetime
) -> WebhookDelivery | None:
    row = await db.fetchrow(REDELIVER, account_id, endpoint_id, delivery_id, now)
    return None if row is None else _delivery(row)


async def claim(db: Executor, now: datetime, limit: int, lease: timedelta) -> list[asyncpg.Record]:
    return list(await db.fetch(CLAIM, now, limit, lease))


async def finish(db: Executor, outcomes: Sequence[tuple[Outcome, str, datetime | None]]) -> None:
    """(outcome, new state, next attempt) per delivery, in one statement."""
    await db.execute(
        FINISH,
        [o.delivery_id for o, _, _ in outcomes],
        [state for _, state, _ in outcomes],
        [next_at for _, _, next_at in outcomes],
        [o.at for o, _, _ in outcomes],
        [o.status for o, _, _ in outcomes],
        [o.latency_ms for o, _, _ in outcomes],
        [o.response_body for o, _, _ in outcomes],
        [o.error for o, _, _ in outcomes],
    )


async def record_health(
    db: Executor, rows: Sequence[tuple[UUID, datetime, str, datetime | None, str | None]]
) -> None:
    """(endpoint, at, status, failing since, reason to disable) per endpoint."""
    if rows:
        await db.execute(RECORD_HEALTH, *(list(column) for column in zip(*rows, strict=True)))


async def fail_pending(db: Executor, endpoint_ids: Sequence[UUID], now: datetime) -> None:
    if endpoint_ids:
        await db.execute(FAIL_PENDING, list(endpoint_ids), now)


async def purge(db: Executor, before: datetime) -> None:
    await db.execute(PURGE, before)


async def save_discord_message(
    db: Executor, endpoint_id: UUID, channel_key: str, message_id: str, started_at: datetime | None
) -> None:
    await db.execute(SAVE_DISCORD_MESSAGE, endpoint_id, channel_key, message_id, started_at)


async def get_discord_message(
    db: Executor, endpoint_id: UUID, channel_key: str
) -> tuple[str, datetime | None] | None:
    row = await db.fetchrow(GET_DISCORD_MESSAGE, endpoint_id, channel_key)
    return None if row is None else (row["message_id"], row["started_at"])


async def forget_discord_message(db: Executor, endpoint_id: UUID, channel_key: str) -> None:
    await db.execute(FORGET_DISCORD_MESSAGE, endpoint_id, channel_key)
