"""All SQL of accounts, users, roles and memberships."""

from __future__ import annotations

from uuid import UUID

from lumio.accounts.schemas import Member, Membership, User
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

USER_HASH_BY_ID = "SELECT password_hash FROM users WHERE id = $1"
UPDATE_USER_HASH = "UPDATE users SET password_hash = $2 WHERE id = $1"
LIST_MEMBERS = """
SELECT m.user_id, u.email, r.name AS role, m.created_at
FROM account_members m
JOIN users u ON u.id = m.user_id
JOIN roles r ON r.id = m.role_id
WHERE m.account_id = $1
ORDER BY m.created_at, u.email
"""
MEMBER_ROLE = """
SELECT r.name FROM account_members m JOIN roles r ON r.id = m.role_id
WHERE m.account_id = $1 AND m.user_id = $2
"""
# Locks the account's Owner memberships, so that two concurrent changes cannot both remove
# "one of two" Owners and leave none.
LOCK_OWNERS = """
SELECT m.user_id FROM account_members m JOIN roles r ON r.id = m.role_id
WHERE m.account_id = $1 AND r.name = 'owner'
FOR UPDATE OF m
"""
SET_MEMBER_ROLE = """
UPDATE account_members m SET role_id = r.id
FROM roles r
WHERE r.account_id = $1 AND r.name = $3 AND m.account_id = $1 AND m.user_id = $2
RETURNING m.user_id
"""
DELETE_MEMBER = (
    "DELETE FROM account_members WHERE account_id = $1 AND user_id = $2 RETURNING user_id"
)


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


async def password_hash_of(db: Executor, user_id: UUID) -> str | None:
    found: str | None = await db.fetchval(USER_HASH_BY_ID, user_id)
    return found


async def update_password(db: Executor, user_id: UUID, password_hash: str) -> None:
    await db.execute(UPDATE_USER_HASH, user_id, password_hash)


async def list_members(db: Executor, account_id: UUID) -> list[Member]:
    rows = await db.fetch(LIST_MEMBERS, account_id)
    return [Member(r["user_id"], r["email"], RoleName(r["role"]), r["created_at"]) for r in rows]


async def member_role(db: Executor, account_id: UUID, user_id: UUID) -> RoleName | None:
    name = await db.fetchval(MEMBER_ROLE, account_id, user_id)
    return None if name is None else RoleName(name)


async def lock_owners(db: Executor, account_id: UUID) -> set[UUID]:
    return {r["user_id"] for r in await db.fetch(LOCK_OWNERS, account_id)}


async def set_member_role(db: Executor, account_id: UUID, user_id: UUID, role: RoleName) -> bool:
    return await db.fetchval(SET_MEMBER_ROLE, account_id, user_id, role.value) is not None


async def delete_member(db: Executor, account_id: UUID, user_id: UUID) -> bool:
    return await db.fetchval(DELETE_MEMBER, account_id, user_id) is not None
