"""Members: invitations, the members:manage permission, and since when a channel's platform fails.

Revision ID: 0005_members
Revises: 0004_history
Create Date: 2026-12-02
"""

from lumio.db.ddl import execute_script

revision = "0005_members"
down_revision = "0004_history"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(btrim(email)) AND email LIKE '_%@_%'),
    role        text NOT NULL
        CHECK (role IN ('owner', 'administrator', 'moderator', 'viewer')),
    token_hash  bytea NOT NULL CONSTRAINT invitations_token_hash_key UNIQUE,
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX invitations_account_idx ON invitations (account_id, created_at);

-- Set at the first failing poll of a run of failures, cleared by the next answer: the dashboard
-- says since when a platform has not answered.
ALTER TABLE platform_channels ADD COLUMN error_since timestamptz;

UPDATE roles SET permissions = array_append(permissions, 'members:manage')
WHERE name IN ('owner', 'administrator') AND NOT 'members:manage' = ANY (permissions);
"""

DOWNGRADE = """
UPDATE roles SET permissions = array_remove(permissions, 'members:manage');
ALTER TABLE platform_channels DROP COLUMN error_since;
DROP TABLE invitations;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
