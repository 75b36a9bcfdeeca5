"""Reading the active account's stream history (REST and GraphQL call these functions)."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from lumio.history import repository
from lumio.history.schemas import (
    BroadcastView,
    Page,
    Resolution,
    StreamSessionDetailView,
    StreamSessionView,
    StreamStatsView,
)
from lumio.kit.errors import BadRequest, NotFound
from lumio.kit.permissions import Permission
from lumio.kit.principal import Principal
from lumio.platforms.base import Platform

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
STATS_DAYS = 30
CSV_MAX_ROWS = 100_000
_BINS = {
    Resolution.RAW: None,
    Resolution.MINUTE: timedelta(minutes=1),
    Resolution.FIVE_MINUTES: timedelta(minutes=5),
}

# --- input -----------------------------------------------------------------------------------------


def encode_cursor(started_at: datetime, item_id: UUID) -> str:
    raw = f"{started_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The position a cursor names; any other text is a 400."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, item_id = raw.partition("|")
        started_at = datetime.fromisoformat(moment)
        if started_at.tzinfo is None:
            raise ValueError("no time zone")
        return started_at, UUID(item_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is not one this API gave out") from exc


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def as_utc(moment: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def check_range(since: datetime | None, until: datetime | None) -> tuple[datetime | None, ...]:
    since, until = as_utc(since), as_utc(until)
    if since is not None and until is not None and since >= until:
        raise BadRequest("from must be earlier than to")
    return since, until


def parse_platform(value: str | None) -> Platform | None:
    if value is None or value == "":
        return None
    try:
        return Platform(value.strip().lower())
    except ValueError as exc:
        known = ", ".join(p.value for p in Platform)
        raise BadRequest(f"unknown platform {value!r}; one of {known}") from exc


def parse_resolution(value: str) -> Resolution:
    try:
        return Resolution(value)
    except ValueError as exc:
        raise BadRequest("resolution is one of raw, 1m, 5m") from exc


# --- sessions --------------------------------------------------------------------------------------


async def list_sessions(
    db: asyncpg.Pool,
    principal: Principal,
    *,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[StreamSessionView]:
    """The account's sessions overlapping [since, until), newest first, a page at a time."""
    account_id = principal.require(Permission.SPOTIFY_READ)
    since, until = check_range(since, until)
    found = await repository.list_sessions(
        db,
        account_id,
        parse_platform(platform),
        since,
        until,
        decode_cursor(cursor),
        check_limit(limit) + 1,
    )
    return _page(found, limit)


def _page(found: list[StreamSessionView], limit: int) -> Page[StreamSessionView]:
    items = found[:limit]
    more = len(found) > limit
    return Page(items, encode_cursor(items[-1].started_at, items[-1].id) if more else None)


def _session_id(value: str | UUID) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(value)
    except ValueError as exc:
        raise NotFound("no such stream session") from exc


async def session_detail(
    db: asyncpg.Pool, principal: Principal, session_id: str | UUID, resolution: str = "raw"
) -> StreamSessionDetailView:
    """A session of the account with its segments, viewer curve and the tracks played in it."""
    account_id = principal.require(Permission.SPOTIFY_READ)
    bins = _BINS[parse_resolution(resolution)]
    session = await repository.get_session(db, account_id, _session_id(session_id))
    if session is None:
        # Another account's session is as absent as one that never was.
        raise NotFound("no such stream session")
    until = session.started_at + timedelta(seconds=session.duration_seconds + 1)
    return StreamSessionDetailView(
        session,
        await repository.segments(db, session.id),
        await repository.series(db, session, bins),
        await repository.plays_between(db, account_id, session.started_at, until),
    )


async def sessions_csv(
    db: asyncpg.Pool,
    principal: Principal,
    *,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """Every session matching the filters as CSV (newest first)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    cursor: str | None = None
    for _ in range(CSV_MAX_ROWS // MAX_LIMIT):
        page = await list_sessions(
            db, principal, platform=platform, since=since, until=until, cursor=cursor,
            limit=MAX_LIMIT,
        )  # fmt: skip
        writer.writerows(_csv_row(s) for s in page.items)
        if (cursor := page.next_cursor) is None:
            break
    return out.getvalue()


CSV_COLUMNS = (
    "id", "platform", "started_at", "ended_at", "ended_inferred", "duration_seconds", "title",
    "category", "peak_viewers", "average_viewers", "generated",
)  # fmt: skip


def _csv_row(s: StreamSessionView) -> list[object]:
    average = None if s.average_viewers is None else round(s.average_viewers, 1)
    return [
        s.id, s.platform, s.started_at.isoformat(), s.ended_at.isoformat() if s.ended_at else "",
        s.ended_inferred, s.duration_seconds, _csv_text(s.title), _csv_text(s.category),
        s.peak_viewers, average, s.generated,
    ]  # fmt: skip


def _csv_text(value: str | None) -> str:
    # A title is user text: keep a spreadsheet from reading it as a formula.
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- broadcasts ------------------------------------------------------------------------------------


async def list_broadcasts(
    db: asyncpg.Pool, principal: Principal, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> Page[BroadcastView]:
    """Overlapping sessions of the account as one broadcast each, newest first."""
    account_id = principal.require(Permission.SPOTIFY_READ)
    rows = await repository.list_broadcast_sessions(
        db, account_id, decode_cursor(cursor), check_limit(limit) + 1
    )
    groups: dict[UUID, list[StreamSessionView]] = {}
    for broadcast_id, session in rows:
        groups.setdefault(broadcast_id, []).append(session)
    ids = list(groups)[:limit]
    peaks = await repository.broadcast_peaks(db, [(s.id, b) for b in ids for s in groups[b]])
    items = [_broadcast(b, groups[b], peaks.get(b)) for b in ids]
    more = len(groups) > limit
    return Page(items, encode_cursor(items[-1].started_at, items[-1].id) if more else None)


def _broadcast(
    broadcast_id: UUID, sessions: Sequence[StreamSessionView], peak: int | None
) -> BroadcastView:
    started = min(s.started_at for s in sessions)
    ends = [s.started_at + timedelta(seconds=s.duration_seconds) for s in sessions]
    open_ = any(s.ended_at is None for s in sessions)
    averages = [s.average_viewers for s in sessions if s.average_viewers is not None]
    return BroadcastView(
        id=broadcast_id,
        started_at=started,
        ended_at=None if open_ else max(s.ended_at for s in sessions if s.ended_at),
        duration_seconds=int((max(ends) - started).total_seconds()),
        platforms=sorted({s.platform for s in sessions}),
        titles=list(dict.fromkeys(s.title for s in sessions if s.title)),
        peak_viewers=peak,
        # Audiences of simultaneous platforms add up.
        average_viewers=sum(averages) if averages else None,
        sessions=list(sessions),
    )


# --- stats -----------------------------------------------------------------------------------------


async def stream_stats(
    db: asyncpg.Pool,
    principal: Principal,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> StreamStatsView:
    """Streams, hours live, mean and peak viewers per platform over [since, until)."""
    account_id = principal.require(Permission.SPOTIFY_READ)
    since, until = check_range(since, until)
    until = until or now or datetime.now(UTC)
    since = since or until - timedelta(days=STATS_DAYS)
    if since >= until:
        raise BadRequest("from must be earlier than to")
    rows = await repository.stats(db, account_id, since, until)
    total, count = sum(r[1] for r in rows), sum(r[2] for r in rows)
    peaks = [r[0].peak_viewers for r in rows if r[0].peak_viewers is not None]
    return StreamStatsView(
        started_at=since,
        ended_at=until,
        streams=sum(r[0].streams for r in rows),
        hours_live=sum(r[0].hours_live for r in rows),
        average_viewers=total / count if count else None,
        peak_viewers=max(peaks) if peaks else None,
        platforms=[r[0] for r in rows],
    )
