"""The webhook outbox keeps each status transaction's facts as one JSON text, not four arrays of
finished bodies: the bodies are built by the delivery loop, off the status write (issue 13's cost
target). Rows still queued in the old form become deliveries first, as the old loop would have
made them.

Revision ID: 0009_outbox_facts
Revises: 0008_webhooks
Create Date: 2026-12-02
"""

from lumio.db.ddl import execute_script

revision = "0009_outbox_facts"
down_revision = "0008_webhooks"
branch_labels = None
depends_on = None

UPGRADE = """
WITH taken AS (DELETE FROM webhook_outbox RETURNING *)
INSERT INTO webhook_deliveries
    (id, endpoint_id, account_id, channel_key, event_type, body, queued_at, next_attempt_at)
SELECT gen_random_uuid(), w.id, n.account_id, n.channel_key, n.event_type, n.body,
    t.created_at, t.created_at
FROM taken t
CROSS JOIN LATERAL unnest(t.account_ids, t.channel_keys, t.event_types, t.bodies)
    WITH ORDINALITY AS n (account_id, channel_key, event_type, body, ord)
JOIN webhook_endpoints w
    ON w.account_id = n.account_id AND w.enabled AND n.event_type = ANY (w.events)
ORDER BY t.id, n.ord, w.id;

-- [[event, stream context or null, extra data or null], ...] in the order of the transaction.
ALTER TABLE webhook_outbox
    DROP COLUMN account_ids,
    DROP COLUMN channel_keys,
    DROP COLUMN event_types,
    DROP COLUMN bodies,
    ADD COLUMN facts text NOT NULL;
"""

DOWNGRADE = """
DELETE FROM webhook_outbox;
ALTER TABLE webhook_outbox
    DROP COLUMN facts,
    ADD COLUMN account_ids uuid[] NOT NULL,
    ADD COLUMN channel_keys text[] NOT NULL,
    ADD COLUMN event_types text[] NOT NULL,
    ADD COLUMN bodies text[] NOT NULL;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
