"""All SQL of accounts, users, roles and memberships."""

from __future__ import annotations

from uuid import UUID

from lumio.accounts.schemas import Membership, User
from lumio.db.pool import Executor
from lumio.kit.permissions import DEFAULT_ROLES, RoleName

INSERT_USER = "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id"
USER_BY_EMAIL = "SELECT id, email, password_hash FROM users WHERE email = $1"
INSERT_ACCOUNT = "INSERT INTO accounts (name) VALUES ($1) RETURNING id"
ACCOUNT_EXISTS = "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)"
INSERT_ROLES = """
INSERT INTO roles (account_id, name, permissions)
SELECT $1, name, string_to_array(perms, ',')
FROM unnest($2::text[], $3::text[]) AS t(name, perms)
"""
UPSERT_MEMBER = """
INSERT INTO account_members (account_id, user_id, role_id)
SELECT $1, $2, r.id FROM roles r WHERE r.account_id = $1 AND r.name = $3
ON CONFLICT (account_id, user_id) DO UPDATE SET role_id = EXCLUDED.role_id
RETURNING role_id
"""
MEMBERSHIPS_OF_USER = """
SELECT a.id AS account_id, a.name AS account_name, r.name AS role
FROM account_members m
JOIN accounts a ON a.id = m.account_id
JOIN roles r ON r.id = m.role_id
WHERE m.user_id = $1
ORDER BY m.created_at, a.name
"""
IS_MEMBER = """
SELECT EXISTS (SELECT 1 FROM account_members WHERE user_id = $1 AND account_id = $2)
"""


async def insert_user(db: Executor, email: str, password_hash: str) -> UUID:
    user_id: UUID = await db.fetchval(INSERT_USER, email, password_hash)
    return user_id


async def user_with_hash(db: Executor, email: str) -> tuple[User, str] | None:
    row = await db.fetchrow(USER_BY_EMAIL, email)
    if row is None:
        return None
    return User(row["id"], row["email"]), row["password_hash"]


async def insert_account_with_roles(db: Executor, name: str) -> UUID:
    account_id: UUID = await db.fetchval(INSERT_ACCOUNT, name)
    names = [role.value for role in DEFAULT_ROLES]
    perms = [",".join(sorted(p.value for p in DEFAULT_ROLES[role])) for role in DEFAULT_ROLES]
    await db.execute(INSERT_ROLES, account_id, names, perms)
    return account_id


async def account_exists(db: Executor, account_id: UUID) -> bool:
    return bool(await db.fetchval(ACCOUNT_EXISTS, account_id))


async def upsert_member(db: Executor, account_id: UUID, user_id: UUID, role: RoleName) -> bool:
    """Make the user a member with ``role``; False when the account has no such role."""
    return await db.fetchval(UPSERT_MEMBER, account_id, user_id, role.value) is not None


async def memberships(db: Executor, user_id: UUID) -> list[Membership]:
    rows = await db.fetch(MEMBERSHIPS_OF_USER, user_id)
    return [Membership(r["account_id"], r["account_name"], r["role"]) for r in rows]


async def is_member(db: Executor, user_id: UUID, account_id: UUID) -> bool:
    return bool(await db.fetchval(IS_MEMBER, user_id, account_id))
