"""Stream history: sessions, their title/category segments, viewer samples (raw and 5-minute).

Revision ID: 0004_history
Revises: 0003_spotify
Create Date: 2026-12-02
"""

from lumio.db.ddl import execute_script

revision = "0004_history"
down_revision = "0003_spotify"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE stream_sessions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    platform        text NOT NULL CONSTRAINT stream_sessions_platform_check
        CHECK (platform IN ('twitch', 'youtube', 'kick', 'trovo')),
    stream_id       text NOT NULL,
    started_at      timestamptz NOT NULL,
    -- NULL while live.
    ended_at        timestamptz,
    -- The end was not observed (a worker outage, an unlink or a re-link) but inferred.
    ended_inferred  boolean NOT NULL DEFAULT false,
    -- The last live sighting: where an inferred end is put.
    last_seen_at    timestamptz NOT NULL,
    title           text,
    category        text,
    peak_viewers    integer,
    -- Average viewers = viewer_sum / viewer_samples (the mean of the samples).
    viewer_sum      bigint NOT NULL DEFAULT 0,
    viewer_samples  integer NOT NULL DEFAULT 0,
    -- Demo data made up by `lumio dev`, never observed.
    generated       boolean NOT NULL DEFAULT false
);
-- At most one open session per channel: the worker's upsert targets it.
CREATE UNIQUE INDEX stream_sessions_open_idx ON stream_sessions (account_id, platform)
    WHERE ended_at IS NULL;
-- Newest first, keyset pagination.
CREATE INDEX stream_sessions_account_idx ON stream_sessions (account_id, started_at DESC, id DESC);
-- Retention walks sessions by age.
CREATE INDEX stream_sessions_started_brin ON stream_sessions USING brin (started_at);

CREATE TABLE stream_segments (
    session_id  uuid NOT NULL REFERENCES stream_sessions (id) ON DELETE CASCADE,
    started_at  timestamptz NOT NULL,
    title       text,
    category    text,
    PRIMARY KEY (session_id, started_at)
);

-- One row per live observation. Read by session (the primary key); retention finds old rows
-- through a BRIN index: rows arrive in time order, so the index is a few pages for billions.
CREATE TABLE viewer_samples (
    session_id   uuid NOT NULL REFERENCES stream_sessions (id) ON DELETE CASCADE,
    observed_at  timestamptz NOT NULL,
    viewers      integer NOT NULL,
    PRIMARY KEY (session_id, observed_at)
);
CREATE INDEX viewer_samples_observed_brin ON viewer_samples USING brin (observed_at);

-- Raw samples older than LUMIO_HISTORY_RAW_DAYS, one row per session and 5 minutes.
-- avg_viewers is weighted by time (each sample holds until the next one); seconds is that weight.
CREATE TABLE viewer_samples_5m (
    session_id   uuid NOT NULL REFERENCES stream_sessions (id) ON DELETE CASCADE,
    bucket       timestamptz NOT NULL,
    min_viewers  integer NOT NULL,
    max_viewers  integer NOT NULL,
    avg_viewers  double precision NOT NULL,
    seconds      double precision NOT NULL,
    samples      integer NOT NULL,
    PRIMARY KEY (session_id, bucket)
);
"""

DOWNGRADE = """
DROP TABLE viewer_samples_5m;
DROP TABLE viewer_samples;
DROP TABLE stream_segments;
DROP TABLE stream_sessions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
