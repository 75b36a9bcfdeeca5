"""Linked channels with the detector's state, schedule and lease; the channels:manage permission.

Revision ID: 0002_platform_channels
Revises: 0001_core
Create Date: 2026-11-29
"""

from lumio.db.ddl import execute_script

revision = "0002_platform_channels"
down_revision = "0001_core"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE platform_channels (
    account_id          uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    platform            text NOT NULL
        CONSTRAINT platform_channels_platform_check
        CHECK (platform IN ('twitch', 'youtube', 'kick', 'trovo')),
    channel_id          text NOT NULL CHECK (length(channel_id) BETWEEN 1 AND 200),
    display_name        text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    detector_state      jsonb NOT NULL DEFAULT '{}',
    next_poll_at        timestamptz NOT NULL DEFAULT now(),
    leased_until        timestamptz,
    lease_token         uuid,
    last_polled_at      timestamptz,
    consecutive_errors  integer NOT NULL DEFAULT 0,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    -- channel_status has one row per (account, platform): so does this.
    PRIMARY KEY (account_id, platform)
);
-- Claiming due work: by platform, oldest due first.
CREATE INDEX platform_channels_due_idx ON platform_channels (platform, next_poll_at);
CREATE INDEX platform_channels_channel_idx ON platform_channels (platform, channel_id);

UPDATE roles SET permissions = array_append(permissions, 'channels:manage')
WHERE name IN ('owner', 'administrator') AND NOT 'channels:manage' = ANY (permissions);
"""

DOWNGRADE = """
UPDATE roles SET permissions = array_remove(permissions, 'channels:manage');
DROP TABLE platform_channels;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
