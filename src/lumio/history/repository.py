"""All SQL of stream_sessions, stream_segments, viewer_samples and viewer_samples_5m.

The worker's writers are one statement per batch over ``unnest`` arrays, run in the transaction
that writes channel_status. Readers are scoped by account: a session of another account is
simply not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from lumio.db.pool import Executor
from lumio.history.schemas import (
    ChannelKey,
    GeneratedSession,
    HistoryBatch,
    PlatformStatsView,
    SegmentView,
    SessionMark,
    Sighting,
    StreamEnd,
    StreamSessionView,
    TrackView,
    ViewerSeriesView,
)
from lumio.platforms.base import Platform

# --- the worker's writers ------------------------------------------------------------------------

# Closes the open session of each channel: on went_offline (keep_stream_id NULL), and on a
# go-live of another broadcast (a session of a different stream is left open by an outage or a
# stream switch). An end seen later than the grace after the last live sighting was not observed.
CLOSE_SESSIONS = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[])
        AS t(account_id, platform, keep_stream_id, offline_since, grace_seconds)
)
UPDATE stream_sessions s SET
    ended_at = GREATEST(s.last_seen_at, s.started_at),
    ended_inferred = input.offline_since - s.last_seen_at > make_interval(secs => input.grace_seconds)
FROM input
WHERE s.account_id = input.account_id AND s.platform = input.platform AND s.ended_at IS NULL
  AND (input.keep_stream_id IS NULL OR s.stream_id <> input.keep_stream_id)
RETURNING s.id, s.account_id, s.platform,
    extract(epoch FROM s.ended_at - s.started_at)::int AS duration_seconds
"""

# Opens a session, or adds a sighting to the open one (peak, mean, last title), and writes its
# segment (a new session, or a new title or category) and viewer sample: three tables in one
# statement. An observation not newer than the last one counted is ignored, so a repeated batch
# counts nothing twice. Returns the sessions of go-lives (their went_online names them).
RECORD_SIGHTINGS = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[],
                         $5::timestamptz[], $6::text[], $7::text[], $8::int[], $9::bool[],
                         $10::bool[])
        AS t(account_id, platform, stream_id, started_at, observed_at, title, category, viewers,
             new_segment, opens)
), sessions AS (
    INSERT INTO stream_sessions AS s
        (account_id, platform, stream_id, started_at, last_seen_at, title, category,
         peak_viewers, viewer_sum, viewer_samples)
    SELECT account_id, platform, stream_id, started_at, observed_at, title, category, viewers,
           COALESCE(viewers, 0), (viewers IS NOT NULL)::int
    FROM input
    ON CONFLICT (account_id, platform) WHERE ended_at IS NULL DO UPDATE SET
        last_seen_at = EXCLUDED.last_seen_at,
        title = EXCLUDED.title,
        category = EXCLUDED.category,
        peak_viewers = GREATEST(s.peak_viewers, EXCLUDED.peak_viewers),
        viewer_sum = s.viewer_sum + EXCLUDED.viewer_sum,
        viewer_samples = s.viewer_samples + EXCLUDED.viewer_samples
    WHERE s.last_seen_at < EXCLUDED.last_seen_at
    RETURNING s.id, s.account_id, s.platform, (xmax = 0) AS opened
), sighted AS (
    SELECT sessions.id, sessions.opened, input.*
    FROM sessions JOIN input USING (account_id, platform)
), segments AS (
    INSERT INTO stream_segments (session_id, started_at, title, category)
    SELECT id, CASE WHEN opened THEN started_at ELSE observed_at END, title, category
    FROM sighted WHERE opened OR new_segment
    ON CONFLICT (session_id, started_at) DO NOTHING
), samples AS (
    INSERT INTO viewer_samples (session_id, observed_at, viewers)
    SELECT id, observed_at, viewers FROM sighted WHERE viewers IS NOT NULL
    ON CONFLICT (session_id, observed_at) DO NOTHING
)
SELECT id, account_id, platform FROM sighted WHERE opens
"""

# Open sessions whose channel no longer says it is live with that stream (unlinked, re-linked
# to another channel, a reset detector state): the end is inferred at the last live sighting.
# The detector state and the sessions are written in one transaction, so this is safe any time.
CLOSE_ORPHANS = """
UPDATE stream_sessions s SET
    ended_at = GREATEST(s.last_seen_at, s.started_at), ended_inferred = TRUE
WHERE s.ended_at IS NULL AND ($1::uuid IS NULL OR s.account_id = $1) AND NOT EXISTS (
    SELECT 1 FROM platform_channels pc
    WHERE pc.account_id = s.account_id AND pc.platform = s.platform
      AND pc.detector_state ->> 'phase' IN ('live', 'grace')
      AND pc.detector_state -> 'stream' ->> 'stream_id' = s.stream_id)
RETURNING s.id
"""

# --- demo data (lumio dev) -------------------------------------------------------------------------

HAS_GENERATED = "SELECT EXISTS (SELECT 1 FROM stream_sessions WHERE account_id = $1 AND generated)"

INSERT_GENERATED_SESSION = """
INSERT INTO stream_sessions
    (account_id, platform, stream_id, started_at, ended_at, last_seen_at, title, category,
     peak_viewers, viewer_sum, viewer_samples, generated)
VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, TRUE)
RETURNING id
"""

INSERT_SEGMENTS = """
INSERT INTO stream_segments (session_id, started_at, title, category)
SELECT $1, * FROM unnest($2::timestamptz[], $3::text[], $4::text[])
ON CONFLICT (session_id, started_at) DO NOTHING
"""

INSERT_SAMPLES = """
INSERT INTO viewer_samples (session_id, observed_at, viewers)
SELECT $1, * FROM unnest($2::timestamptz[], $3::int[])
ON CONFLICT (session_id, observed_at) DO NOTHING
"""


# --- readers -------------------------------------------------------------------------------------

_SESSION = """
    s.id, s.platform, s.stream_id, s.started_at, s.ended_at, s.ended_inferred,
    extract(epoch FROM COALESCE(s.ended_at, s.last_seen_at) - s.started_at)::int
        AS duration_seconds,
    s.title, s.category, s.peak_viewers,
    s.viewer_sum::float8 / NULLIF(s.viewer_samples, 0) AS average_viewers, s.generated
"""

# Sessions overlapping [from, to), newest first; the cursor is the last (started_at, id) seen.
LIST_SESSIONS = f"""
SELECT {_SESSION}
FROM stream_sessions s
WHERE s.account_id = $1
  AND ($2::text IS NULL OR s.platform = $2)
  AND ($3::timestamptz IS NULL OR COALESCE(s.ended_at, 'infinity') >= $3)
  AND ($4::timestamptz IS NULL OR s.started_at < $4)
  AND ($5::timestamptz IS NULL OR (s.started_at, s.id) < ($5, $6::uuid))
ORDER BY s.started_at DESC, s.id DESC
LIMIT $7
"""

GET_SESSION = f"SELECT {_SESSION} FROM stream_sessions s WHERE s.id = $1 AND s.account_id = $2"

SESSION_SEGMENTS = """
SELECT g.started_at,
       COALESCE(lead(g.started_at) OVER (ORDER BY g.started_at), s.ended_at) AS ended_at,
       g.title, g.category
FROM stream_segments g JOIN stream_sessions s ON s.id = g.session_id
WHERE g.session_id = $1
ORDER BY g.started_at
"""

# Raw points, with the 5-minute averages standing in where the raw ones were downsampled.
SERIES_RAW = """
SELECT COALESCE(array_agg(t ORDER BY t), '{}') AS t, COALESCE(array_agg(v ORDER BY t), '{}') AS v
FROM (
    SELECT extract(epoch FROM observed_at)::bigint AS t, viewers AS v
    FROM viewer_samples WHERE session_id = $1
    UNION ALL
    SELECT extract(epoch FROM bucket)::bigint, round(avg_viewers)::int
    FROM viewer_samples_5m WHERE session_id = $1
) p
"""

SERIES_BINNED = """
SELECT COALESCE(array_agg(t ORDER BY t), '{}') AS t, COALESCE(array_agg(v ORDER BY t), '{}') AS v,
       COALESCE(array_agg(lo ORDER BY t), '{}') AS lo, COALESCE(array_agg(hi ORDER BY t), '{}') AS hi
FROM (
    SELECT extract(epoch FROM date_bin($2::interval, at, 'epoch'))::bigint AS t,
           round(avg(v))::int AS v, min(lo) AS lo, max(hi) AS hi
    FROM (
        SELECT observed_at AS at, viewers AS v, viewers AS lo, viewers AS hi
        FROM viewer_samples WHERE session_id = $1
        UNION ALL
        SELECT bucket, avg_viewers, min_viewers, max_viewers
        FROM viewer_samples_5m WHERE session_id = $1
    ) raw
    GROUP BY 1
) p
"""

PLAYS_BETWEEN = """
SELECT title, artists, album, url, kind, started_at
FROM spotify_plays
WHERE account_id = $1 AND started_at >= $2 AND started_at < $3
ORDER BY started_at
LIMIT 1000
"""

# Broadcasts: islands of overlapping sessions (gaps and islands over the account's sessions),
# newest first; a broadcast is named by its first session. The cursor is (started_at, id).
LIST_BROADCASTS = f"""
WITH s AS (
    SELECT {_SESSION}, COALESCE(s.ended_at, 'infinity') AS until
    FROM stream_sessions s WHERE s.account_id = $1
), marked AS (
    SELECT *, CASE WHEN started_at < max(until) OVER (
        ORDER BY started_at, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        THEN 0 ELSE 1 END AS opens
    FROM s
), grouped AS (
    SELECT *, sum(opens) OVER (ORDER BY started_at, id) AS island FROM marked
), islands AS (
    SELECT island, min(started_at) AS island_start, (array_agg(id ORDER BY started_at, id))[1]
        AS broadcast_id
    FROM grouped GROUP BY island
), page AS (
    SELECT * FROM islands
    WHERE $2::timestamptz IS NULL OR (island_start, broadcast_id) < ($2, $3::uuid)
    ORDER BY island_start DESC, broadcast_id DESC
    LIMIT $4
)
SELECT page.broadcast_id, grouped.*
FROM grouped JOIN page USING (island)
ORDER BY page.island_start DESC, page.broadcast_id DESC, grouped.started_at, grouped.id
"""

# The highest sum of simultaneous viewers per broadcast: each session's highest count in each
# minute, summed over the broadcast's sessions minute by minute.
BROADCAST_PEAKS = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS t(session_id, broadcast_id)
), per_minute AS (
    SELECT input.broadcast_id, input.session_id,
           date_bin('1 minute', v.observed_at, 'epoch') AS minute, max(v.viewers) AS viewers
    FROM input JOIN viewer_samples v USING (session_id)
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT input.broadcast_id, input.session_id, d.bucket, d.max_viewers
    FROM input JOIN viewer_samples_5m d USING (session_id)
), summed AS (
    SELECT broadcast_id, minute, sum(viewers) AS viewers FROM per_minute GROUP BY 1, 2
)
SELECT broadcast_id, max(viewers)::int AS peak FROM summed GROUP BY 1
"""

# Per platform over [from, to): sessions overlapping it, their hours inside it, the mean of
# their samples, their peak.
STATS = """
SELECT s.platform, count(*)::int AS streams,
       COALESCE(sum(extract(epoch FROM
           LEAST(COALESCE(s.ended_at, s.last_seen_at), $3) - GREATEST(s.started_at, $2))), 0)
           / 3600.0 AS hours_live,
       sum(s.viewer_sum)::float8 / NULLIF(sum(s.viewer_samples), 0) AS average_viewers,
       max(s.peak_viewers) AS peak_viewers,
       sum(s.viewer_sum)::float8 AS viewer_sum, sum(s.viewer_samples)::float8 AS viewer_samples
FROM stream_sessions s
WHERE s.account_id = $1 AND s.started_at < $3 AND COALESCE(s.ended_at, s.last_seen_at) >= $2
GROUP BY s.platform
ORDER BY s.platform
"""

# --- retention -----------------------------------------------------------------------------------

# One replica at a time: a transaction-level lock, gone with the transaction (or the process).
TRY_RETENTION_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('lumio:history:retention'))"

# Raw samples before $1 (a 5-minute boundary, so buckets are whole) of up to $2 sessions become
# one row per 5 minutes: min and max exactly, the average weighted by how long each sample held
# (until the next sample; the last until the session's end), the weight kept as ``seconds``.
DOWNSAMPLE = """
WITH victims AS (
    SELECT DISTINCT session_id FROM viewer_samples WHERE observed_at < $1 LIMIT $2
), held AS (
    SELECT v.session_id, v.observed_at, v.viewers,
           lead(v.observed_at) OVER (PARTITION BY v.session_id ORDER BY v.observed_at) AS next_at
    FROM viewer_samples v JOIN victims USING (session_id)
), weighted AS (
    SELECT h.session_id, date_bin('5 minutes', h.observed_at, 'epoch') AS bucket, h.viewers,
           extract(epoch FROM COALESCE(h.next_at, GREATEST(s.ended_at, h.observed_at),
                                       h.observed_at) - h.observed_at)::float8 AS seconds
    FROM held h JOIN stream_sessions s ON s.id = h.session_id
    WHERE h.observed_at < $1
), buckets AS (
    SELECT session_id, bucket, min(viewers) AS lo, max(viewers) AS hi,
           CASE WHEN sum(seconds) > 0 THEN sum(viewers * seconds) / sum(seconds)
                ELSE avg(viewers)::float8 END AS mean,
           sum(seconds) AS seconds, count(*)::int AS samples
    FROM weighted GROUP BY 1, 2
), saved AS (
    INSERT INTO viewer_samples_5m AS d
        (session_id, bucket, min_viewers, max_viewers, avg_viewers, seconds, samples)
    SELECT session_id, bucket, lo, hi, mean, seconds, samples FROM buckets
    ON CONFLICT (session_id, bucket) DO UPDATE SET
        min_viewers = LEAST(d.min_viewers, EXCLUDED.min_viewers),
        max_viewers = GREATEST(d.max_viewers, EXCLUDED.max_viewers),
        avg_viewers = CASE WHEN d.seconds + EXCLUDED.seconds > 0
            THEN (d.avg_viewers * d.seconds + EXCLUDED.avg_viewers * EXCLUDED.seconds)
                 / (d.seconds + EXCLUDED.seconds)
            ELSE (d.avg_viewers * d.samples + EXCLUDED.avg_viewers * EXCLUDED.samples)
                 / (d.samples + EXCLUDED.samples) END,
        seconds = d.seconds + EXCLUDED.seconds,
        samples = d.samples + EXCLUDED.samples
    RETURNING 1
), deleted AS (
    DELETE FROM viewer_samples v USING victims
    WHERE v.session_id = victims.session_id AND v.observed_at < $1
    RETURNING 1
)
SELECT (SELECT count(*) FROM deleted)::int AS deleted, (SELECT count(*) FROM saved)::int AS saved
"""

DELETE_OLD_SESSIONS = """
WITH old AS (
    SELECT id FROM stream_sessions WHERE ended_at < $1 ORDER BY ended_at LIMIT $2
)
DELETE FROM stream_sessions s USING old WHERE s.id = old.id
"""


# --- the worker's writers ------------------------------------------------------------------------


def _latest(sightings: Sequence[Sighting]) -> list[Sighting]:
    """One sighting per channel, the newest (an upsert may touch a row once per statement)."""
    newest: dict[ChannelKey, Sighting] = {}
    for s in sightings:
        key = (s.account_id, s.platform)
        if key not in newest or newest[key].observed_at <= s.observed_at:
            newest[key] = s
    return list(newest.values())


async def record_batch(db: Executor, batch: HistoryBatch) -> dict[ChannelKey, SessionMark]:
    """Write one poll batch's history; returns the sessions that go-lives and ends touched."""
    marks = await _close(db, batch.ends, [s for s in batch.sightings if s.opens])
    sightings = _latest(batch.sightings)
    if not sightings:
        return marks
    columns = zip(
        *[
            # A start the platform did not give (or gave implausibly) is the first sighting.
            (s.account_id, s.platform.value, s.stream.stream_id, s.stream.started_at or s.observed_at,
             s.observed_at, s.stream.title, s.stream.category, s.stream.viewers, s.new_segment,
             s.opens)
            for s in sightings
        ],
        strict=True,
    )  # fmt: skip
    rows = await db.fetch(RECORD_SIGHTINGS, *map(list, columns))
    # A go-live names the session it opened, not one it closed on the way.
    marks.update({(r["account_id"], Platform(r["platform"])): SessionMark(r["id"]) for r in rows})
    return marks


async def _close(
    db: Executor, ends: Sequence[StreamEnd], opening: Sequence[Sighting]
) -> dict[ChannelKey, SessionMark]:
    if not ends and not opening:
        return {}
    rows = await db.fetch(
        CLOSE_SESSIONS,
        [e.account_id for e in ends] + [s.account_id for s in opening],
        [e.platform.value for e in ends] + [s.platform.value for s in opening],
        [None] * len(ends) + [s.stream.stream_id for s in opening],
        [e.offline_since for e in ends] + [s.observed_at for s in opening],
        [e.grace.total_seconds() for e in ends] + [0.0] * len(opening),
    )
    return {
        (r["account_id"], Platform(r["platform"])): SessionMark(r["id"], r["duration_seconds"])
        for r in rows
    }


async def close_orphans(db: Executor, account_id: UUID | None = None) -> int:
    """Close open sessions whose channel no longer shows that stream live (ended_inferred)."""
    return len(await db.fetch(CLOSE_ORPHANS, account_id))


# --- readers -------------------------------------------------------------------------------------


def _session(row: asyncpg.Record) -> StreamSessionView:
    return StreamSessionView(
        id=row["id"],
        platform=row["platform"],
        stream_id=row["stream_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        ended_inferred=row["ended_inferred"],
        duration_seconds=max(0, row["duration_seconds"]),
        title=row["title"],
        category=row["category"],
        peak_viewers=row["peak_viewers"],
        average_viewers=row["average_viewers"],
        generated=row["generated"],
    )


async def list_sessions(
    db: Executor,
    account_id: UUID,
    platform: Platform | None,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[StreamSessionView]:
    rows = await db.fetch(
        LIST_SESSIONS,
        account_id,
        platform.value if platform else None,
        since,
        until,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_session(r) for r in rows]


async def get_session(db: Executor, account_id: UUID, session_id: UUID) -> StreamSessionView | None:
    row = await db.fetchrow(GET_SESSION, session_id, account_id)
    return None if row is None else _session(row)


async def segments(db: Executor, session_id: UUID) -> list[SegmentView]:
    return [SegmentView(*r) for r in await db.fetch(SESSION_SEGMENTS, session_id)]


async def series(
    db: Executor, session: StreamSessionView, bin_width: timedelta | None
) -> ViewerSeriesView:
    """The viewer curve: raw points (``bin_width`` None) or min/avg/max per bin."""
    if bin_width is None:
        row = await db.fetchrow(SERIES_RAW, session.id)
        assert row is not None
        return ViewerSeriesView(
            session.platform, session.id, "raw", list(row["t"]), list(row["v"]), None, None
        )
    row = await db.fetchrow(SERIES_BINNED, session.id, bin_width)
    assert row is not None
    resolution = "1m" if bin_width == timedelta(minutes=1) else "5m"
    return ViewerSeriesView(
        session.platform,
        session.id,
        resolution,
        list(row["t"]),
        list(row["v"]),
        list(row["lo"]),
        list(row["hi"]),
    )


async def plays_between(
    db: Executor, account_id: UUID, since: datetime, until: datetime
) -> list[TrackView]:
    rows = await db.fetch(PLAYS_BETWEEN, account_id, since, until)
    return [
        TrackView(r["title"], list(r["artists"]), r["album"], r["url"], r["kind"], r["started_at"])
        for r in rows
    ]


async def list_broadcast_sessions(
    db: Executor, account_id: UUID, after: tuple[datetime, UUID] | None, limit: int
) -> list[tuple[UUID, StreamSessionView]]:
    """(broadcast id, session) for a page of broadcasts, newest broadcast first."""
    rows = await db.fetch(
        LIST_BROADCASTS, account_id, after[0] if after else None, after[1] if after else None, limit
    )
    return [(r["broadcast_id"], _session(r)) for r in rows]


async def broadcast_peaks(
    db: Executor, members: Sequence[tuple[UUID, UUID]]
) -> dict[UUID, int | None]:
    """Highest sum of simultaneous viewers per broadcast, from (session id, broadcast id)."""
    rows = await db.fetch(BROADCAST_PEAKS, [s for s, _ in members], [b for _, b in members])
    return {r["broadcast_id"]: r["peak"] for r in rows}


async def stats(
    db: Executor, account_id: UUID, since: datetime, until: datetime
) -> list[tuple[PlatformStatsView, float, float]]:
    """Per platform: the figures, and the sample sum and count behind the mean."""
    rows = await db.fetch(STATS, account_id, since, until)
    return [
        (
            PlatformStatsView(
                r["platform"],
                r["streams"],
                float(r["hours_live"]),
                r["average_viewers"],
                r["peak_viewers"],
            ),
            r["viewer_sum"],
            r["viewer_samples"],
        )
        for r in rows
    ]


# --- demo data -------------------------------------------------------------------------------------


async def has_generated(db: Executor, account_id: UUID) -> bool:
    return bool(await db.fetchval(HAS_GENERATED, account_id))


async def insert_generated(db: Executor, account_id: UUID, session: GeneratedSession) -> UUID:
    """A made-up ended session (``generated`` is set: the API and dashboard say so)."""
    viewers = [v for _, v in session.samples]
    first = session.segments[0]
    session_id: UUID = await db.fetchval(
        INSERT_GENERATED_SESSION, account_id, session.platform.value, session.stream_id,
        session.started_at, session.ended_at, session.segments[-1][1], session.segments[-1][2],
        max(viewers, default=None), sum(viewers), len(viewers),
    )  # fmt: skip
    await db.execute(
        INSERT_SEGMENTS,
        session_id,
        [first[0], *(at for at, _, _ in session.segments[1:])],
        [title for _, title, _ in session.segments],
        [category for _, _, category in session.segments],
    )
    await db.execute(INSERT_SAMPLES, session_id, [at for at, _ in session.samples], viewers)
    return session_id


# --- retention -----------------------------------------------------------------------------------


async def try_retention_lock(db: Executor) -> bool:
    return bool(await db.fetchval(TRY_RETENTION_LOCK))


async def downsample(db: Executor, before: datetime, sessions: int) -> int:
    """Downsample raw samples before ``before`` of up to ``sessions`` sessions; rows removed."""
    row = await db.fetchrow(DOWNSAMPLE, before, sessions)
    assert row is not None
    deleted: int = row["deleted"]
    return deleted


async def delete_old_sessions(db: Executor, ended_before: datetime, limit: int) -> int:
    status = await db.execute(DELETE_OLD_SESSIONS, ended_before, limit)
    return int(status.split()[-1])
