"""Core schema: accounts, users, roles, members, sessions, API keys and channel_status.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-29
"""

from lumio.db.ddl import execute_script

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE accounts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (email = lower(btrim(email)) AND email LIKE '_%@_%'),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE roles (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    account_id   uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    permissions  text[] NOT NULL DEFAULT '{}',
    CONSTRAINT roles_account_name_key UNIQUE (account_id, name),
    CONSTRAINT roles_id_account_key UNIQUE (id, account_id)
);

CREATE TABLE account_members (
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id     uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, user_id),
    -- The role must belong to the same account as the membership.
    CONSTRAINT account_members_role_fkey FOREIGN KEY (role_id, account_id)
        REFERENCES roles (id, account_id) ON DELETE RESTRICT
);
CREATE INDEX account_members_user_idx ON account_members (user_id);

CREATE TABLE sessions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash         bytea NOT NULL CONSTRAINT sessions_token_hash_key UNIQUE,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    active_account_id  uuid REFERENCES accounts (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash    bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    prefix      text NOT NULL,
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id  uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX api_keys_user_account_idx ON api_keys (user_id, account_id);

CREATE TABLE channel_status (
    account_id    uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    platform      text NOT NULL
        CONSTRAINT channel_status_platform_check
        CHECK (platform IN ('twitch', 'youtube', 'kick', 'trovo')),
    is_online     boolean NOT NULL,
    stream_title  text,
    category      text,
    viewer_count  integer CONSTRAINT channel_status_viewer_count_check
        CHECK (viewer_count >= 0),
    started_at    timestamptz,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (account_id, platform),
    CONSTRAINT channel_status_started_at_check CHECK (is_online OR started_at IS NULL)
);
-- Boot recovery reads only the live rows.
CREATE INDEX channel_status_online_idx ON channel_status (account_id) WHERE is_online;
"""

DOWNGRADE = """
DROP TABLE channel_status;
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE account_members;
DROP TABLE roles;
DROP TABLE users;
DROP TABLE accounts;
"""


def upgrade() -> None:
    execute_script(UPGRADE)


def downgrade() -> None:
    execute_script(DOWNGRADE)
