"""Push ingestion: the platforms' subscriptions per linked channel, hints, a per-platform secret.

Revision ID: 0007_push
Revises: 0006_security
Create Date: 2026-12-02
"""

from lumio.db.ddl import execute_script

revision = "0007_push"
down_revision = "0006_security"
branch_labels = None
depends_on = None

UPGRADE = """
-- One row per platform channel and topic (Twitch: stream.online, stream.offline, channel.update;
-- Kick: its two events; YouTube: the channel's feed). Keyed by the platform's channel, not by the
-- account: two accounts linking one channel share its subscriptions.
CREATE TABLE push_subscriptions (
    platform            text NOT NULL
        CONSTRAINT push_subscriptions_platform_check
        CHECK (platform IN ('twitch', 'youtube', 'kick', 'trovo')),
    channel_id          text NOT NULL,
    topic               text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
        CONSTRAINT push_subscriptions_status_check
        CHECK (status IN ('pending', 'enabled', 'failed', 'revoked')),
    -- The platform's id of the subscription (NULL until created there).
    external_id         text,
    -- What the platform said last (a revocation reason, an error).
    reason              text,
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    -- YouTube leases end: renewed before this.
    expires_at          timestamptz,
    leased_until        timestamptz,
    lease_token         uuid,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, channel_id, topic)
);
CREATE INDEX push_subscriptions_due_idx ON push_subscriptions (next_attempt_at);
CREATE INDEX push_subscriptions_external_idx ON push_subscriptions (platform, external_id);

-- The last verified message per platform channel: the worker arms the detector from it and
-- measures hint-to-commit latency; channel listings show last_message_at.
CREATE TABLE push_hints (
    platform            text NOT NULL,
    channel_id          text NOT NULL,
    hinted_at           timestamptz NOT NULL,
    last_message_at     timestamptz NOT NULL,
    -- Set by a Twitch stream.online: the stream it announced (arms the second sighting).
    online_stream_id    text,
    online_started_at   timestamptz,
    online_at           timestamptz,
    PRIMARY KEY (platform, channel_id)
);

-- Per-installation secrets of the push transports that need one of ours (YouTube's hub.secret).
CREATE TABLE push_secrets (
    platform            text PRIMARY KEY,
    secret              text NOT NULL
);
"""

DOWNGRADE = """
DROP TABLE push_secrets;
DROP TABLE push_hints;
DROP TABLE push_subscriptions;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
