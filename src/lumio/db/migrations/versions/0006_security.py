"""Security: when each API key was last used (recorded at most once a minute).

Revision ID: 0006_security
Revises: 0005_members
Create Date: 2026-12-02
"""

from lumio.db.ddl import execute_script

revision = "0006_security"
down_revision = "0005_members"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
CREATE INDEX api_keys_live_by_user_idx ON api_keys (user_id) WHERE revoked_at IS NULL;
"""

DOWNGRADE = """
DROP INDEX api_keys_live_by_user_idx;
ALTER TABLE api_keys DROP COLUMN last_used_at;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
