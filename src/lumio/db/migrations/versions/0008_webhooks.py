"""Outgoing webhooks: endpoints (secrets encrypted), the delivery outbox and its log, the Discord
messages to edit at a stream's end; the webhooks:manage permission.

Revision ID: 0008_webhooks
Revises: 0007_push
Create Date: 2026-12-02
"""

from lumio.db.ddl import execute_script

revision = "0008_webhooks"
down_revision = "0007_push"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE webhook_endpoints (
    id                  uuid PRIMARY KEY,
    account_id          uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (kind IN ('standard', 'discord')),
    url                 text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    events              text[] NOT NULL,
    enabled             boolean NOT NULL DEFAULT true,
    -- Discord message template ({platform}, {title}, {category}, {url}, {viewers}); NULL: default.
    template            text CHECK (length(template) <= 2000),
    -- AES-256-GCM ciphertexts (lumio.kit.crypto); the plaintext never reaches the database.
    secret              bytea NOT NULL,
    previous_secret     bytea,
    previous_until      timestamptz,
    disabled_reason     text,
    failing_since       timestamptz,
    last_delivery_at    timestamptz,
    last_status         text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_account_idx ON webhook_endpoints (account_id);

-- The outbox: one row per status transaction (its changes as parallel arrays), written in that
-- transaction only when the accounts have an enabled endpoint. The delivery loop moves it into
-- webhook_deliveries in id order (one row per change and subscribed endpoint).
CREATE TABLE webhook_outbox (
    id                  bigserial PRIMARY KEY,
    account_ids         uuid[] NOT NULL,
    channel_keys        text[] NOT NULL,
    event_types         text[] NOT NULL,
    bodies              text[] NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- The deliveries: the loop claims due rows. The id is the webhook-id, the same on every retry.
CREATE TABLE webhook_deliveries (
    id                  uuid PRIMARY KEY,
    seq                 bigserial NOT NULL,
    endpoint_id         uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    account_id          uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Deliveries of one endpoint and channel go out in seq order.
    channel_key         text NOT NULL,
    event_type          text NOT NULL,
    body                text NOT NULL,
    -- When the change committed its outbox row (commit-to-delivery latency starts here).
    queued_at           timestamptz NOT NULL DEFAULT now(),
    state               text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    leased_until        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz,
    -- The log of the last attempt: status code, latency, the first 1 KB of the answer.
    last_attempt_at     timestamptz,
    response_status     integer,
    latency_ms          integer,
    response_body       text CHECK (length(response_body) <= 1024),
    error               text
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (endpoint_id, channel_key, seq)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at);

-- The go-live message a Discord endpoint posted, edited when the stream ends.
CREATE TABLE webhook_discord_messages (
    endpoint_id         uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    channel_key         text NOT NULL,
    message_id          text NOT NULL,
    started_at          timestamptz,
    PRIMARY KEY (endpoint_id, channel_key)
);

UPDATE roles SET permissions = array_append(permissions, 'webhooks:manage')
WHERE name IN ('owner', 'administrator') AND NOT 'webhooks:manage' = ANY (permissions);
"""

DOWNGRADE = """
UPDATE roles SET permissions = array_remove(permissions, 'webhooks:manage');
DROP TABLE webhook_discord_messages;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_outbox;
DROP TABLE webhook_endpoints;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
