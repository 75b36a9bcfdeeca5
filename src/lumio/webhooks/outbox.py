"""Writing the outbox in the caller's transaction (the transactional outbox).

The platform worker calls ``enqueue_status_events`` inside its store transaction, so a change
and its notifications commit (or roll back) together. A batch is one ``webhook_outbox`` row
(its changes as arrays), written only when an account of the batch has an enabled endpoint:
the status write pays one small insert, not one row per change and endpoint. The delivery loop
turns outbox rows into deliveries (one per change and subscribed endpoint) and sends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from lumio.db.pool import Executor
from lumio.events.schemas import Reason, StatusEvent, format_instant
from lumio.webhooks import repository
from lumio.webhooks.schemas import EventType, Notice, StreamContext

_CHANNEL_URLS = {
    "twitch": "https://www.twitch.tv/{name}",
    "kick": "https://kick.com/{name}",
    "trovo": "https://trovo.live/s/{name}",
    "youtube": "https://www.youtube.com/channel/{id}",
}


def channel_url(platform: str, channel_id: str, display_name: str) -> str | None:
    template = _CHANNEL_URLS.get(platform)
    if template is None:
        return None
    return template.format(name=display_name or channel_id, id=channel_id)


def body_of(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> str:
    """The Standard Webhooks payload: ``{"type", "timestamp", "data"}``."""
    payload = {"type": event_type, "timestamp": format_instant(occurred_at), "data": data}
    return orjson.dumps(payload).decode()


def _stream_data(event: StatusEvent, context: StreamContext | None) -> dict[str, Any]:
    if context is None or event.platform is None:
        return {}
    data: dict[str, Any] = {
        "channel_id": context.channel_id,
        "channel_name": context.display_name or None,
        "url": channel_url(event.platform, context.channel_id, context.display_name),
    }
    stream = context.stream
    if stream is not None:
        data |= {
            "title": stream.title,
            "category": stream.category,
            "viewers": stream.viewers,
            "started_at": format_instant(stream.started_at) if stream.started_at else None,
        }
        if event.reason is Reason.WENT_OFFLINE:
            data |= {"ended_at": format_instant(event.occurred_at)}
            if stream.started_at is not None:
                ended = (event.occurred_at - stream.started_at).total_seconds()
                data |= {"duration_seconds": int(ended)}
    # The history's session, when it has one: its id, and the stream's length as it measured it.
    if event.session_id is not None:
        data |= {"session_id": str(event.session_id)}
    if event.duration_seconds is not None:
        data |= {"duration_seconds": event.duration_seconds}
    return data


def status_notice(
    event: StatusEvent,
    context: StreamContext | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Notice:
    """The status event of DESIGN §5, enriched with what a receiver needs without a callback."""
    data = orjson.loads(event.to_json()) | _stream_data(event, context) | dict(extra or {})
    return Notice(
        account_id=event.account_id,
        event_type=event.reason.value,
        channel_key=event.platform or "manual",
        body=body_of(event.reason.value, event.occurred_at, data),
    )


async def enqueue_status_events(
    conn: Executor,
    events: Sequence[StatusEvent],
    contexts: Mapping[tuple[UUID, str], StreamContext] | None = None,
) -> None:
    """Write the events' deliveries in ``conn``'s transaction (committed with the change)."""
    known = contexts or {}
    notices = [status_notice(e, known.get((e.account_id, e.platform or ""))) for e in events]
    await repository.enqueue(conn, notices)


async def enqueue_outside(
    db: asyncpg.Pool,
    events: Sequence[StatusEvent],
    extras: Mapping[UUID, Mapping[str, Any]] | None = None,
) -> None:
    """For changes kept in Redis (manual connect, now playing), which cannot share a PostgreSQL
    transaction: the rows get their own small transaction right after the change. A crash in
    between loses that notification (the change stands); a change that failed writes none."""
    if not events:
        return
    notices = [status_notice(e, None, (extras or {}).get(e.account_id)) for e in events]
    async with db.acquire() as conn, conn.transaction():
        await repository.enqueue(conn, notices)


def test_notice(account_id: UUID, now: datetime) -> Notice:
    data = {"v": 1, "account_id": str(account_id), "message": "a test message from Lumio"}
    return Notice(account_id, EventType.TEST.value, "test", body_of("test", now, data))
