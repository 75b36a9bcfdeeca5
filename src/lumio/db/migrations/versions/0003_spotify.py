"""Spotify: each account's link (tokens encrypted at rest, the poller's gate, schedule and lease)
and the history of what it played.

Revision ID: 0003_spotify
Revises: 0002_platform_channels
Create Date: 2026-11-29
"""

from lumio.db.ddl import execute_script

revision = "0003_spotify"
down_revision = "0002_platform_channels"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE spotify_connections (
    account_id         uuid PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    spotify_user_id    text NOT NULL CHECK (length(spotify_user_id) BETWEEN 1 AND 200),
    display_name       text CHECK (length(display_name) <= 200),
    scope              text NOT NULL DEFAULT '',
    -- AES-256-GCM ciphertexts (lumio.spotify.linking.crypto); the plaintext never reaches the database.
    access_token       bytea NOT NULL,
    refresh_token      bytea NOT NULL,
    access_expires_at  timestamptz NOT NULL,
    status             text NOT NULL DEFAULT 'active'
        CONSTRAINT spotify_connections_status_check CHECK (status IN ('active', 'needs_reauth')),
    status_detail      text,
    linked_by          uuid REFERENCES users (id) ON DELETE SET NULL,
    linked_at          timestamptz NOT NULL DEFAULT now(),
    -- The gate as the workers last saw it (live somewhere OR manual connect), and when: a
    -- replica that read the truth earlier cannot overwrite one that read it later.
    gate_open          boolean NOT NULL DEFAULT false,
    gate_checked_at    timestamptz,
    -- The poller's schedule and lease, as platform_channels.
    next_poll_at       timestamptz NOT NULL DEFAULT now(),
    leased_until       timestamptz,
    lease_token        uuid,
    last_polled_at     timestamptz,
    consecutive_errors integer NOT NULL DEFAULT 0,
    last_error         text,
    -- What the last poll saw (item, play state, progress): to tell a change from a repeat.
    playback           jsonb NOT NULL DEFAULT '{}'
);
-- Claiming due work: open gates only, oldest due first.
CREATE INDEX spotify_connections_due_idx ON spotify_connections (next_poll_at)
    WHERE gate_open AND status = 'active';

CREATE TABLE spotify_plays (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind         text NOT NULL CONSTRAINT spotify_plays_kind_check
        CHECK (kind IN ('track', 'episode')),
    item_id      text,
    title        text NOT NULL,
    artists      text[] NOT NULL DEFAULT '{}',
    album        text,
    art_url      text,
    url          text,
    duration_ms  integer,
    started_at   timestamptz NOT NULL
);
CREATE INDEX spotify_plays_account_idx ON spotify_plays (account_id, started_at DESC);
"""

DOWNGRADE = """
DROP TABLE spotify_plays;
DROP TABLE spotify_connections;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
